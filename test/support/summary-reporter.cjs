// Prints the plain closing line CI reads: "tests: N passed, N failed" (plus skipped when any).
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const failedSuites = results.numFailedTestSuites - results.numRuntimeErrorTestSuites >= 0 ? results.numRuntimeErrorTestSuites : 0;
    const failed = results.numFailedTests + failedSuites;
    let line = `tests: ${results.numPassedTests} passed, ${failed} failed`;
    if (skipped > 0) line += `, ${skipped} skipped`;
    process.stdout.write(`\n${line}\n`);
  }
}
module.exports = SummaryReporter;
