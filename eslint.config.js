import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/support/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error', 'warn'] }],
    },
  },
  {
    // Architecture guard: providers never import the server or envelope; nothing imports the CLI.
    files: ['src/kek/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/server/**', '**/envelope/**', '**/health/**', '**/cli/**', '**/app/**'] },
      ],
    },
  },
  {
    files: ['src/envelope/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/server/**', '**/health/**', '**/cli/**', '**/app/**'] },
      ],
    },
  },
  {
    files: ['src/server/**/*.ts', 'src/health/**/*.ts', 'src/config/**/*.ts', 'src/observability/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/cli/**', '**/app/**'] }] },
  },
  prettier,
);
