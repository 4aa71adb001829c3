// A REST call to a Sluice under test; a status of 300 or more is an error.
export async function rest(server: { httpPort: number }, method: string, urlPath: string, body?: unknown): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}${urlPath}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${urlPath}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}
