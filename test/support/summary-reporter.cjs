// Prints (and saves to test-results/summary.txt) the plain closing line CI reads:
// "tests: N passed, N failed" (", N skipped" when any). A suite that failed to run counts as failed.
const fs = require('node:fs');
const path = require('node:path');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    let line = `tests: ${results.numPassedTests} passed, ${failed} failed`;
    if (skipped > 0) line += `, ${skipped} skipped`;
    process.stdout.write(`\n${line}\n`);
    try {
      const dir = path.join(process.cwd(), 'test-results');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'summary.txt'), `${line}\n`);
    } catch {
      // best effort
    }
  }
}
module.exports = SummaryReporter;
