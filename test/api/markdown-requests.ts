// The requests a markdown file shows as curl commands, with their JSON bodies.
/** Requests written as `curl -X METHOD URL ... -d '<json>'` in a markdown file. */
export function curlBodies(markdown: string): { method: string; path: string; body: unknown; line: number }[] {
  const found: { method: string; path: string; body: unknown; line: number }[] = [];
  // A command may span lines (the JSON body does); it ends at a line that does not end in a
  // continuation, or at the end of the -d '...' quote.
  for (const m of markdown.matchAll(/curl ([^\n]*?)-X (PUT|POST) '?([^\s']+)'?((?:(?!curl )[\s\S])*?)-d '([^']*)'/g)) {
    const url = new URL(m[3]!.startsWith('http') ? m[3]! : `http://${m[3]}`);
    const line = markdown.slice(0, m.index).split('\n').length;
    found.push({ method: m[2]!.toLowerCase(), path: url.pathname, body: JSON.parse(m[5]!), line });
  }
  return found;
}
