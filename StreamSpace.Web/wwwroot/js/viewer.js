// The session viewer: noVNC's RFB client over the API's /vnc/{id} WebSocket, opened on the API directly: on the page's
// host at data-vnc-port when the page names one (`./streamspace up`), else on the page's own origin (an ingress routes
// /vnc to the API). Each connection takes a fresh single-use ticket from the web server (POST /viewer/{id}/ticket,
// cookie-authenticated); the ticket is the WebSocket's only credential, and the API's token never reaches this script.
// The desktop takes the viewer's size (RFB SetDesktopSize; with several viewers, the last one resized wins) unless the
// user's "Scale instead" preference, kept by the API, says to scale it. The clipboard passes both ways: see below.
import RFB from '../lib/novnc/core/rfb.js';
import KeyTable from '../lib/novnc/core/input/keysym.js';

const root = document.getElementById('viewer');
const sessionId = root.dataset.sessionId;
const vncPort = root.dataset.vncPort;
const screen = document.getElementById('viewer-screen');
const status = document.getElementById('viewer-status');
const clipboardPanel = document.getElementById('viewer-clipboard');
const clipboardToggle = document.getElementById('viewer-clipboard-toggle');
const clipboardText = document.getElementById('viewer-clipboard-text');
const clipboardCopy = document.getElementById('viewer-clipboard-copy');
const scaleToggle = document.getElementById('viewer-scale');

let rfb = null;
let attempt = 0;
let leaving = false;

function setStatus(text) {
    status.textContent = text;
    root.dataset.state = text;
}

// The API's close code for a viewer its session's owner or an admin revoked (README: Sessions and the VNC tunnel).
const REVOKED = 4403;
// The API replica that held this viewer is stopping: connect again at once, through the balancer, to one that stays.
const REPLICA_STOPPING = 4307;

// The API's route for the signed-in user's viewer preferences, through the web's proxy (which adds the user's token).
const PREFERENCES = 'api/v1/users/me/viewer-preferences';

// Resizing the session (the default) or scaling its desktop into the viewer, as the user chose.
function applyScaling() {
    if (rfb) {
        rfb.scaleViewport = scaleToggle.checked;
        rfb.resizeSession = !scaleToggle.checked;
    }
}

async function loadPreferences() {
    try {
        // Bounded: the desktop waits for this, and a slow answer must not keep it waiting long.
        const response = await fetch(PREFERENCES, { credentials: 'same-origin', signal: AbortSignal.timeout(3000) });
        if (response.ok) {
            scaleToggle.checked = (await response.json()).scale_viewport === true;
        }
    } catch {
        // The defaults serve: a viewer that cannot read its preferences still shows the desktop.
    }
}

scaleToggle.addEventListener('change', async () => {
    applyScaling();
    try {
        const response = await fetch(PREFERENCES, {
            method: 'PUT',
            headers: { 'X-StreamSpace-Request': '1', 'Content-Type': 'application/json' },
            credentials: 'same-origin',
            body: JSON.stringify({ scale_viewport: scaleToggle.checked }),
        });
        if (!response.ok) {
            setStatus('Could not save the scaling choice; it applies to this window only');
        }
    } catch {
        setStatus('Could not save the scaling choice; it applies to this window only');
    }
    rfb?.focus();
});

async function fetchTicket() {
    const response = await fetch(`viewer/${encodeURIComponent(sessionId)}/ticket`, {
        method: 'POST',
        // The custom header is the CSRF guard: another site cannot send it without a CORS preflight we never grant.
        headers: { 'X-StreamSpace-Request': '1' },
        credentials: 'same-origin',
    });
    if (!response.ok) {
        let detail = `${response.status}`;
        try { detail = (await response.json()).detail ?? detail; } catch { /* not JSON */ }
        const error = new Error(detail);
        error.status = response.status;
        throw error;
    }
    return response.json();
}

async function connect() {
    setStatus(attempt === 0 ? 'Connecting…' : `Reconnecting (attempt ${attempt})…`);
    let ticket;
    try {
        ticket = await fetchTicket();
    } catch (error) {
        if (error.status === 401) {
            location.href = `login?returnUrl=${encodeURIComponent(location.pathname)}`;
            return;
        }
        // 404 and 409 (not running) will not heal by retrying fast; keep trying slowly, since a session may be waking.
        scheduleReconnect(`Cannot connect: ${error.message}`);
        return;
    }

    const url = new URL(ticket.url, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (vncPort) {
        url.port = vncPort;
    }
    // Our own socket, handed to noVNC, so the close code and reason are ours to read: noVNC's disconnect event has neither.
    const socket = new WebSocket(url.toString(), ['binary']);
    let closed = null;
    let worked = false;
    socket.addEventListener('close', (event) => { closed = event; });
    rfb = new RFB(screen, socket);
    applyScaling();
    rfb.focusOnClick = true;
    rfb.addEventListener('connect', () => {
        attempt = 0;
        worked = true;
        setStatus('Connected');
        rfb.focus();
    });
    rfb.addEventListener('disconnect', (event) => {
        rfb = null;
        if (leaving) {
            return;
        }
        if (closed?.code === REVOKED) {
            // The owner or an admin closed this viewer: reconnecting would undo it.
            setStatus(`Disconnected: ${closed.reason}`);
            return;
        }
        if (closed?.code === REPLICA_STOPPING) {
            // Not a failure: a fresh ticket at once, spread over 250 ms so a replica's viewers do not arrive together.
            attempt = 0;
            setStatus('Reconnecting…');
            setTimeout(connect, Math.random() * 250);
            return;
        }
        scheduleReconnect(closed?.code >= 4000 && closed.reason ? `Disconnected: ${closed.reason}`
            : event.detail.clean ? 'Disconnected' : 'Connection lost', worked);
    });
    rfb.addEventListener('clipboard', (event) => receiveClipboard(event.detail.text));
    rfb.addEventListener('desktopname', (event) => {
        document.title = `${event.detail.name} · StreamSpace`;
    });
}

function scheduleReconnect(reason, afterWorking = false) {
    attempt += 1;
    // A connection that had worked is most often back at once (a restarted replica, a dropped network): the first
    // retry after it comes sooner.
    const delay = afterWorking && attempt === 1 ? 250 : Math.min(10, attempt) * 1000;
    setStatus(`${reason}; reconnecting in ${delay / 1000} s…`);
    setTimeout(connect, delay);
}

document.getElementById('viewer-fullscreen').addEventListener('click', async () => {
    if (document.fullscreenElement) {
        await document.exitFullscreen();
    } else {
        await root.requestFullscreen();
    }
});

document.getElementById('viewer-cad').addEventListener('click', () => rfb?.sendCtrlAltDel());

clipboardToggle.addEventListener('click', () => {
    clipboardPanel.hidden = !clipboardPanel.hidden;
    clipboardToggle.setAttribute('aria-expanded', String(!clipboardPanel.hidden));
});

// Session → browser: what the session copied goes to the browser's clipboard when the page may write it, and always
// to the panel, whose Copy button (a user gesture, which browsers accept) serves where the page may not.
async function receiveClipboard(text) {
    clipboardText.value = text;
    try {
        await navigator.clipboard.writeText(text);
        clipboardToggle.dataset.pending = 'false';
    } catch {
        // The Clipboard button's mark says text waits in the panel; the status stays the connection's.
        clipboardToggle.dataset.pending = 'true';
    }
}

clipboardCopy.addEventListener('click', async () => {
    try {
        await navigator.clipboard.writeText(clipboardText.value);
    } catch {
        clipboardText.select();
        document.execCommand('copy');
    }
    clipboardToggle.dataset.pending = 'false';
});

// Browser → session on Ctrl+V (⌘V on a Mac) into the viewer: the browser's clipboard (or, where the page may not
// read it, the panel's text) becomes the session's first, then the V goes on, so the program pastes the new text.
// The V is held back until then: were it sent at once, the program would paste before the text arrived. noVNC sees
// neither the V's press (stopped here) nor, therefore, its release.
screen.addEventListener('keydown', async (event) => {
    if (!rfb || event.code !== 'KeyV' || !(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey) {
        return;
    }

    event.preventDefault();
    event.stopPropagation();
    let text = clipboardText.value;
    try {
        text = await navigator.clipboard.readText();
        clipboardText.value = text;
    } catch {
        // No permission to read: the panel's text is what the user offers.
    }

    rfb?.clipboardPasteFrom(text);
    rfb?.sendKey(KeyTable.XK_v, 'KeyV');
}, { capture: true });

document.getElementById('viewer-clipboard-send').addEventListener('click', () => {
    rfb?.clipboardPasteFrom(clipboardText.value);
    rfb?.focus();
});

window.addEventListener('pagehide', () => {
    leaving = true;
    rfb?.disconnect();
});

// Connects once the preferences are known, so the first size asked for is the right one (no await at the top level:
// the page's scripts may run this module where that is not allowed).
loadPreferences().then(connect);
