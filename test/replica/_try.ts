import { startEtcdCluster } from '../support/etcd.js';
import { freePort, spawnSluice } from '../support/process.js';
import { tempDir, serviceOf } from '../support/sluice.js';
const etcd = await startEtcdCluster({ size: 1 });
const store = 'etcd://' + etcd.hosts.map((h) => h.replace('http://', '')).join(',');
const mk = async (id: string) => spawnSluice({ dataDir: tempDir(), httpPort: await freePort(), xdsPort: await freePort(), extra: ['--store', store, '--replica-id', id, '--lease-ttl', '2s'], captureLogs: true });
const a = await mk('a');
const b = await mk('b');
try {
  console.log((await a.api('PUT', '/v1/services/echo', serviceOf({ v1: 1, v2: 2 }))).status);
  await new Promise((r) => setTimeout(r, 500));
  console.log(JSON.stringify((await b.api('GET', '/v1/services/echo')).body));
  console.log(JSON.stringify((await b.api('GET', '/v1/status')).body));
  console.log(JSON.stringify((await a.api('POST', '/v1/rollouts', { service: 'echo', canary: 'v2', steps: [{ setWeight: 10 }, { pause: { duration: '2s' } }, { setWeight: 50 }] })).body.phase));
  await new Promise((r) => setTimeout(r, 4000));
  console.log(JSON.stringify((await b.api('GET', '/v1/rollouts/echo')).body.history.map((h: any) => [h.event, h.by])));
  console.log(JSON.stringify((await b.api('GET', '/v1/fleet')).body));
} finally {
  console.log(a.logs().slice(-3000));
  await a.kill(); await b.kill(); await etcd.close();
}
