// The `jsserve` test guest: a componentize-js HTTP handler, written as JavaScript plug-ins
// are (a service-worker `fetch` event), built for the world `wasi:http/proxy`, so it
// exports `wasi:http/incoming-handler`.
//
// Routes: `/trap` throws; anything else echoes the method, the path with its query, the
// request's `x-echo` header and its body, with status 200 (or the `x-status` header's).

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  if (url.pathname === "/trap") {
    throw new Error("the handler failed on purpose");
  }
  const body = new Uint8Array(await request.arrayBuffer());
  return new Response(body, {
    status: Number(request.headers.get("x-status") ?? "200"),
    headers: {
      "content-type": "application/octet-stream",
      "x-method": request.method,
      "x-path": url.pathname + url.search,
      "x-echo": request.headers.get("x-echo") ?? "",
    },
  });
}
