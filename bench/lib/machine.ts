/** The machine a figure was taken on, and how busy it was. */
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalMiB: number;
  memFreeMiB: number;
  node: string;
  kernel: string;
}

export function machineInfo(): MachineInfo {
  let kernel = '';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    kernel = 'unknown';
  }
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memTotalMiB: Math.round(totalmem() / 1048576),
    memFreeMiB: Math.round(freemem() / 1048576),
    node: process.version,
    kernel,
  };
}

/** 1, 5 and 15 minute load averages, like `uptime`. */
export function loadAvg(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

export function describeMachine(): string {
  const m = machineInfo();
  return `${m.nproc} CPUs (${m.cpuModel}), ${m.memTotalMiB} MiB RAM, Node ${m.node}, kernel ${m.kernel}, load ${loadAvg()}`;
}
