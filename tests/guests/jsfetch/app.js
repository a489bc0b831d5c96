// The `jsfetch` test guest: exported async functions, which componentize-js runs to
// completion (its event loop polls the host's wasi:io pollables).

export async function fetchText(url) {
  try {
    const response = await fetch(url);
    return `${response.status} ${await response.text()}`;
  } catch (e) {
    return `error: ${e}`;
  }
}

export async function postText(url, body) {
  try {
    const response = await fetch(url, { method: "POST", body, headers: { "x-test": "yes" } });
    return `${response.status} ${await response.text()}`;
  } catch (e) {
    return `error: ${e}`;
  }
}
