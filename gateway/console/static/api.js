// The console's HTTP API: JSON in, an ApiError with the server's own message out.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** GET a JSON document; the server's `{"error": "..."}` becomes the ApiError's message. */
export async function getJson(path, { signal } = {}) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" }, signal, cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("The console server did not answer; is `choreo console` still running?", 0);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const said = body && typeof body.error === "string" ? body.error : response.statusText;
    throw new ApiError(`${said} (HTTP ${response.status})`, response.status);
  }
  if (body === null) throw new ApiError(`${path} did not answer with JSON`, response.status);
  return body;
}
