/** One YAML style for every rendered file: no line wrapping, literal blocks for embedded files. */
import { stringify } from 'yaml';

export function toYaml(value: unknown, header?: string): string {
  const body = stringify(value, { lineWidth: 0, blockQuote: 'literal', aliasDuplicateObjects: false });
  return header ? `${comment(header)}${body}` : body;
}

function comment(text: string): string {
  return text
    .split('\n')
    .map((l) => (l ? `# ${l}` : '#'))
    .join('\n')
    .concat('\n');
}
