// Shared by the server child processes: measurements the orchestrator asks for.

/** Heap and RSS after forcing full collections (the child runs with --expose-gc). */
export async function measureMemory(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage();
}

export function cpuSnapshot(): { cpu: NodeJS.CpuUsage; at: number } {
  return { cpu: process.cpuUsage(), at: performance.now() };
}
