// Shared by the server child processes: measurements the orchestrator asks for.
import inspector from 'node:inspector';
import fs from 'node:fs';
import path from 'node:path';

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

// CPU profiles of a measured window (the inspector's profiler, same format as --cpu-prof).

let session: inspector.Session | undefined;

function post(method: string, params?: object): Promise<any> {
  return new Promise((resolve, reject) =>
    session!.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

export async function profileStart(): Promise<void> {
  if (!session) {
    session = new inspector.Session();
    session.connect();
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 200 });
  }
  await post('Profiler.start');
}

export async function profileStop(args: { file: string }): Promise<string> {
  const { profile } = await post('Profiler.stop');
  fs.mkdirSync(path.dirname(args.file), { recursive: true });
  fs.writeFileSync(args.file, JSON.stringify(profile));
  return args.file;
}
