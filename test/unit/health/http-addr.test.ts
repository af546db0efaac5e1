/** host:port parsing and loopback detection for the health listener (src/health/http-addr.ts). */
import { describe, expect, it } from '@jest/globals';
import { isLoopbackHost, parseHostPort } from '../../../src/health/http-addr.js';

describe('binding', () => {
  it('parses host:port forms and knows loopback hosts', () => {
    expect(parseHostPort('127.0.0.1:8086')).toEqual({ host: '127.0.0.1', port: 8086 });
    expect(parseHostPort('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(parseHostPort('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(() => parseHostPort('8086')).toThrow(/host:port/);
    expect(() => parseHostPort('1.2.3.4:70000')).toThrow(/0\.\.65535/);
    expect(['127.0.0.1', '127.9.9.9', '::1', 'localhost'].map(isLoopbackHost)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(['0.0.0.0', '10.0.0.1', '::', 'example.com'].map(isLoopbackHost)).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});
