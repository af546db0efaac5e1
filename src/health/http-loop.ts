/**
 * Event-loop responsiveness for /livez, measured locally (never a remote call): the worst delay
 * `perf_hooks.monitorEventLoopDelay` saw in the current window. A window rolls over every
 * `windowMs`, so one old stall does not fail liveness forever, but a loop that stalls again and
 * again does.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface LoopLag {
  /** Worst delay in the last complete or current window, in milliseconds. */
  maxLagMs(): number;
  stop(): void;
}

export function startLoopMonitor(windowMs = 30_000, resolutionMs = 20): LoopLag {
  const h: IntervalHistogram = monitorEventLoopDelay({ resolution: resolutionMs });
  h.enable();
  let previousMax = 0;
  const timer = setInterval(() => {
    previousMax = h.max / 1e6;
    h.reset();
  }, windowMs);
  timer.unref();
  return {
    maxLagMs: () => Math.max(previousMax, h.max / 1e6),
    stop: () => {
      clearInterval(timer);
      h.disable();
    },
  };
}
