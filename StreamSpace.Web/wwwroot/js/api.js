// Calls the API through the web's /api proxy (and the web's own /viewer and /shares ticket routes), which add the
// signed-in user's token. The X-StreamSpace-Request header is the proxy's CSRF guard: another site cannot send it
// without a CORS preflight, which is never granted. The one place the viewer's scripts make such calls.

/** The answer's JSON (null for 204); a refusal throws an Error with the problem's detail, and its status and title. */
export async function callApi(path, { method = 'GET', body } = {}) {
    const response = await fetch(path, {
        method,
        headers: { 'X-StreamSpace-Request': '1', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
        credentials: 'same-origin',
        body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) {
        let problem = {};
        try { problem = await response.json(); } catch { /* not JSON */ }
        const error = new Error(problem.detail ?? `${response.status}`);
        error.status = response.status;
        error.title = problem.title ?? null;
        throw error;
    }
    return response.status === 204 ? null : response.json();
}
