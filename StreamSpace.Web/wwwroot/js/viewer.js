// The session viewer: noVNC's RFB client over the API's /vnc/{id} WebSocket, opened on the API directly: on the page's
// host at data-vnc-port when the page names one (`./streamspace up`), else on the page's own origin (an ingress routes
// /vnc to the API). Each connection takes a fresh single-use ticket from the web server (POST /viewer/{id}/ticket,
// cookie-authenticated); the ticket is the WebSocket's only credential, and the API's token never reaches this script.
// The desktop takes the viewer's size (RFB SetDesktopSize; with several viewers, the last one resized wins) unless the
// user's "Scale instead" preference, kept by the API, says to scale it. The clipboard passes both ways: see below.
// A share's viewer (data-share-id) takes its tickets through the share; a view-only one always scales (it may not
// resize another's desktop), sends no input (Xvnc ignores it anyway) and has no clipboard panel.
// When the connect answer has an audio URL the session's sound plays too (js/audio.js), with a Mute button whose
// choice the API keeps beside the scaling one.
import RFB from '../lib/novnc/core/rfb.js';
import KeyTable from '../lib/novnc/core/input/keysym.js';
import { callApi } from './api.js';
import { SessionSound, soundSupported } from './audio.js';

const root = document.getElementById('viewer');
const sessionId = root.dataset.sessionId;
const shareId = root.dataset.shareId;
const viewOnly = root.dataset.viewOnly === 'true';
const vncPort = root.dataset.vncPort;
const screen = document.getElementById('viewer-screen');
const status = document.getElementById('viewer-status');
const clipboardPanel = document.getElementById('viewer-clipboard');
const clipboardToggle = document.getElementById('viewer-clipboard-toggle');
const clipboardText = document.getElementById('viewer-clipboard-text');
const clipboardCopy = document.getElementById('viewer-clipboard-copy');
const scaleToggle = document.getElementById('viewer-scale');
const muteToggle = document.getElementById('viewer-mute');
const soundNote = document.getElementById('viewer-sound-note');

let rfb = null;
let attempt = 0;
let leaving = false;
let sound = null;
// What the API keeps for this user; a PUT carries both, so changing one never resets the other.
const preferences = { scale_viewport: false, audio_muted: false };

function setStatus(text) {
    status.textContent = text;
    root.dataset.state = text;
}

// The API's close code for a viewer its session's owner or an admin revoked (README: Sessions and the VNC tunnel).
const REVOKED = 4403;
// The share this viewer came through ended or expired: reconnecting cannot help.
const SHARE_ENDED = 4411;
// The API replica that held this viewer is stopping: connect again at once, through the balancer, to one that stays.
const REPLICA_STOPPING = 4307;

// The API's route for the signed-in user's viewer preferences, through the web's proxy (which adds the user's token).
const PREFERENCES = 'api/v1/users/me/viewer-preferences';

// Resizing the session (the default) or scaling its desktop into the viewer, as the user chose.
function applyScaling() {
    if (rfb) {
        const scale = viewOnly || scaleToggle.checked;
        rfb.scaleViewport = scale;
        rfb.resizeSession = !scale;
        rfb.viewOnly = viewOnly;
    }
}

// Ends the viewer for good with a page that says why (an ended, expired or withdrawn share), instead of a blank desktop.
function showEnded(title, detail) {
    setStatus('Disconnected');
    const notice = document.createElement('section');
    notice.className = 'share-refused';
    notice.id = 'share-refused';
    const heading = document.createElement('h2');
    heading.textContent = title;
    const text = document.createElement('p');
    text.textContent = detail ?? '';
    notice.append(heading, text);
    screen.replaceChildren(notice);
}

async function loadPreferences() {
    try {
        // Bounded: the desktop waits for this, and a slow answer must not keep it waiting long.
        const response = await fetch(PREFERENCES, { credentials: 'same-origin', signal: AbortSignal.timeout(3000) });
        if (response.ok) {
            const stored = await response.json();
            preferences.scale_viewport = stored.scale_viewport === true;
            preferences.audio_muted = stored.audio_muted === true;
        }
    } catch {
        // The defaults serve: a viewer that cannot read its preferences still shows the desktop.
    }
    if (scaleToggle) {
        scaleToggle.checked = preferences.scale_viewport;
    }
    showMuted();
}

function showMuted() {
    muteToggle.setAttribute('aria-pressed', String(preferences.audio_muted));
    muteToggle.textContent = preferences.audio_muted ? 'Unmute' : 'Mute';
}

scaleToggle?.addEventListener('change', async () => {
    applyScaling();
    preferences.scale_viewport = scaleToggle.checked;
    try {
        await callApi(PREFERENCES, { method: 'PUT', body: preferences });
    } catch {
        setStatus('Could not save the scaling choice; it applies to this window only');
    }
    rfb?.focus();
});

muteToggle.addEventListener('click', async () => {
    preferences.audio_muted = !preferences.audio_muted;
    showMuted();
    if (sound) {
        // Silences what is already scheduled at once.
        sound.muted = preferences.audio_muted;
    }
    if (preferences.audio_muted) {
        // Muted, nothing is sent: the socket closes and the agent stops capturing.
        sound?.stop();
    } else if (rfb) {
        resumeSound();
    }
    try {
        await callApi(PREFERENCES, { method: 'PUT', body: preferences });
    } catch {
        setStatus('Could not save the sound choice; it applies to this window only');
    }
    rfb?.focus();
});

// Unmuting a connected viewer takes a fresh audio ticket: the one its connection came with is spent or expired. The
// VNC ticket issued beside it goes unused and expires in 30 s.
async function resumeSound() {
    try {
        const ticket = await fetchTicket();
        if (!preferences.audio_muted && rfb) {
            openSound(ticket.audioUrl);
        }
    } catch {
        setStatus('Could not start the sound; it starts with the next connection');
    }
}

// The session's sound for this connection, when it has any: on the API at the same place as the VNC WebSocket. A
// muted viewer opens nothing, so it costs the session nothing either.
function openSound(path) {
    sound?.stop();
    muteToggle.hidden = !path;
    if (!path) {
        return;
    }
    if (!soundSupported()) {
        // WebCodecs and Web Audio's decoder exist in secure contexts only (HTTPS, or http://localhost).
        muteToggle.hidden = true;
        soundNote.textContent = window.isSecureContext ? 'This browser cannot play the sound' : 'Sound needs HTTPS';
        soundNote.hidden = false;
        return;
    }
    if (preferences.audio_muted) {
        return;
    }
    // A sound socket that closes for a reason that may heal (a replica stopping, a dropped connection) opens again
    // with a fresh ticket while the viewer is connected.
    sound ??= new SessionSound(false, () => {
        if (rfb && !preferences.audio_muted) {
            resumeSound();
        }
    });
    sound.muted = false;
    sound.open(webSocketUrl(path));
}

function webSocketUrl(path) {
    const url = new URL(path, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (vncPort) {
        url.port = vncPort;
    }
    return url.toString();
}

function fetchTicket() {
    const path = shareId ? `shares/${encodeURIComponent(shareId)}/ticket` : `viewer/${encodeURIComponent(sessionId)}/ticket`;
    return callApi(path, { method: 'POST' });
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
        if (shareId && [403, 404, 410].includes(error.status)) {
            // The share ended, expired, is not for this user, or sharing was turned off: waiting will not change that.
            showEnded(error.status === 410 ? (error.title ?? 'This share has ended.') : error.status === 404 ? 'This session is not shared with you.'
                : 'Sharing is turned off.', error.message);
            return;
        }
        // 404 and 409 (not running) will not heal by retrying fast; keep trying slowly, since a session may be waking.
        scheduleReconnect(`Cannot connect: ${error.message}`);
        return;
    }

    // Our own socket, handed to noVNC, so the close code and reason are ours to read: noVNC's disconnect event has neither.
    const socket = new WebSocket(webSocketUrl(ticket.url), ['binary']);
    // The web's ticket answer (ViewerEndpoints) is the API's ConnectResponse in ASP.NET's camelCase.
    openSound(ticket.audioUrl);
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
        sound?.stop();
        if (leaving) {
            return;
        }
        if (closed?.code === SHARE_ENDED) {
            showEnded(/expired/i.test(closed.reason) ? 'This share has expired.' : 'This share has ended.', closed.reason);
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

document.getElementById('viewer-cad')?.addEventListener('click', () => rfb?.sendCtrlAltDel());

clipboardToggle?.addEventListener('click', () => {
    clipboardPanel.hidden = !clipboardPanel.hidden;
    clipboardToggle.setAttribute('aria-expanded', String(!clipboardPanel.hidden));
});

// Session → browser: what the session copied goes to the browser's clipboard when the page may write it, and always
// to the panel, whose Copy button (a user gesture, which browsers accept) serves where the page may not.
async function receiveClipboard(text) {
    if (!clipboardText) {
        return;
    }
    clipboardText.value = text;
    try {
        await navigator.clipboard.writeText(text);
        clipboardToggle.dataset.pending = 'false';
    } catch {
        // The Clipboard button's mark says text waits in the panel; the status stays the connection's.
        clipboardToggle.dataset.pending = 'true';
    }
}

clipboardCopy?.addEventListener('click', async () => {
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
    if (!rfb || !clipboardText || event.code !== 'KeyV' || !(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey) {
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

document.getElementById('viewer-clipboard-send')?.addEventListener('click', () => {
    rfb?.clipboardPasteFrom(clipboardText.value);
    rfb?.focus();
});

window.addEventListener('pagehide', () => {
    leaving = true;
    rfb?.disconnect();
    sound?.close();
});

// Files in and out (README "Files in and out"): uploads go to the session's ~/Uploads one request each, the raw file
// as the body of a PUT through the web's /api proxy, so XMLHttpRequest's upload events give each file's progress and
// the bytes stream through without being held. ~/Downloads is listed below with links the browser downloads itself.
// Absent from a share's viewer.
if (document.getElementById('viewer-files')) {
    const filesPanel = document.getElementById('viewer-files');
    const filesToggle = document.getElementById('viewer-files-toggle');
    const drop = document.getElementById('viewer-drop');
    const filesInput = document.getElementById('viewer-files-input');
    const uploads = document.getElementById('viewer-uploads');
    const downloads = document.getElementById('viewer-downloads');
    const downloadsStatus = document.getElementById('viewer-downloads-status');
    const FILES = `api/v1/sessions/${encodeURIComponent(sessionId)}/files`;

    filesToggle.addEventListener('click', () => {
        filesPanel.hidden = !filesPanel.hidden;
        filesToggle.setAttribute('aria-expanded', String(!filesPanel.hidden));
        if (!filesPanel.hidden) {
            listDownloads();
        }
    });

    function upload(file) {
        const item = document.createElement('li');
        item.dataset.name = file.name;
        item.dataset.state = 'uploading';
        const name = document.createElement('span');
        name.textContent = file.name;
        const progress = document.createElement('progress');
        progress.max = file.size || 1;
        progress.value = 0;
        const state = document.createElement('span');
        state.className = 'upload-state';
        state.textContent = 'Uploading…';
        item.append(name, progress, state);
        uploads.append(item);

        const request = new XMLHttpRequest();
        request.open('PUT', `${FILES}/uploads/${encodeURIComponent(file.name)}`);
        request.setRequestHeader('X-StreamSpace-Request', '1');
        request.setRequestHeader('Content-Type', 'application/octet-stream');
        request.upload.addEventListener('progress', (event) => {
            progress.value = event.loaded;
            state.textContent = `${Math.floor(100 * event.loaded / (event.total || 1))} %`;
        });
        request.addEventListener('load', () => {
            if (request.status === 201) {
                const stored = JSON.parse(request.responseText);
                progress.value = progress.max;
                item.dataset.state = 'done';
                state.textContent = stored.name === file.name ? 'Done' : `Done, as ${stored.name}`;
                return;
            }
            let detail = `${request.status}`;
            try { detail = JSON.parse(request.responseText).detail ?? detail; } catch { /* not JSON */ }
            item.dataset.state = 'failed';
            state.textContent = `Failed: ${detail}`;
        });
        request.addEventListener('error', () => {
            item.dataset.state = 'failed';
            state.textContent = 'Failed: the connection broke';
        });
        request.send(file);
    }

    function uploadAll(files) {
        for (const file of files) {
            upload(file);
        }
    }

    filesInput.addEventListener('change', () => {
        uploadAll(filesInput.files);
        filesInput.value = '';
    });
    drop.addEventListener('dragover', (event) => {
        event.preventDefault();
        drop.dataset.over = 'true';
    });
    drop.addEventListener('dragleave', () => { drop.dataset.over = 'false'; });
    drop.addEventListener('drop', (event) => {
        event.preventDefault();
        drop.dataset.over = 'false';
        uploadAll(event.dataTransfer.files);
    });

    function formatSize(bytes) {
        const units = ['B', 'KiB', 'MiB', 'GiB'];
        let value = bytes;
        let unit = 0;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit += 1;
        }
        return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
    }

    async function listDownloads() {
        downloadsStatus.textContent = 'Loading…';
        try {
            const { files } = await callApi(`${FILES}/downloads`);
            downloads.replaceChildren(...files.map((file) => {
                const item = document.createElement('li');
                const link = document.createElement('a');
                link.href = `${FILES}/downloads/${encodeURIComponent(file.name)}`;
                link.download = file.name;
                link.textContent = file.name;
                item.append(link, ` (${formatSize(file.size)})`);
                return item;
            }));
            downloadsStatus.textContent = files.length === 0 ? 'Nothing yet: files the session saves in ~/Downloads appear here.' : '';
        } catch (error) {
            // A refusal carries the API's reason; a fetch that failed has no status.
            downloadsStatus.textContent = `Cannot list ~/Downloads: ${error.status ? error.message : 'the connection broke'}`;
        }
    }

    document.getElementById('viewer-downloads-refresh').addEventListener('click', listDownloads);
}

// The owner is told while the session is recorded (README "Recording"): the session as the API shows it now, then
// each change of it from the live event stream, since an admin may start a recording at any time. Not on a share's
// viewer: its recipient cannot read the session.
if (!shareId) {
    const recordingBadge = document.getElementById('viewer-recording');
    const showRecording = (session) => { recordingBadge.hidden = session.recording !== true; };
    callApi(`api/v1/sessions/${encodeURIComponent(sessionId)}`).then(showRecording).catch(() => { /* the next event shows it */ });
    const events = new EventSource('api/v1/sessions/events');
    events.addEventListener('session', (event) => {
        const session = JSON.parse(event.data);
        if (session.id === sessionId) {
            showRecording(session);
        }
    });
    window.addEventListener('pagehide', () => events.close());
}

// Connects once the preferences are known, so the first size asked for is the right one (no await at the top level:
// the page's scripts may run this module where that is not allowed).
loadPreferences().then(connect);
