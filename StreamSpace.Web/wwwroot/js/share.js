// The owner's Share dialog in the viewer (README "Sharing"): creates a link to this session, view-only or interactive,
// for a time and optionally for named users, and lists the active shares (End) and who is watching (Drop). Every call
// goes through the web's /api proxy, which adds the user's token; the X-StreamSpace-Request header is its CSRF guard.
import { callApi } from './api.js';

const root = document.getElementById('viewer');
const sessionId = encodeURIComponent(root.dataset.sessionId);
const SHARES = `api/v1/sessions/${sessionId}/shares`;
const VIEWERS = `api/v1/sessions/${sessionId}/viewers`;
const panel = document.getElementById('viewer-share');
const toggle = document.getElementById('viewer-share-toggle');
const form = document.getElementById('viewer-share-form');
const status = document.getElementById('share-status');
const linkRow = document.getElementById('share-link-row');
const link = document.getElementById('share-link');
const active = document.getElementById('share-active');
const watching = document.getElementById('share-viewers');
let refresher = null;

function call(method, path, body) {
    return callApi(path, { method, body });
}

function modeName(mode) {
    return mode === 'view_only' ? 'view-only' : 'interactive';
}

function button(text, onClick) {
    const element = document.createElement('button');
    element.type = 'button';
    element.className = 'button-secondary';
    element.textContent = text;
    element.addEventListener('click', onClick);
    return element;
}

async function refresh() {
    try {
        const [shares, viewers] = await Promise.all([call('GET', SHARES), call('GET', VIEWERS)]);
        active.replaceChildren(...shares.map((share) => {
            const item = document.createElement('li');
            item.dataset.shareId = share.id;
            const until = new Date(share.expires_at).toLocaleString();
            item.append(`${modeName(share.mode)}, until ${until}, for ${share.users?.length ? share.users.join(', ') : 'anyone signed in with the link'} `,
                button('End', async () => {
                    await act(() => call('DELETE', `${SHARES}/${encodeURIComponent(share.id)}`), 'Share ended; its viewers are closed.');
                }));
            return item;
        }));
        if (shares.length === 0) {
            active.replaceChildren(Object.assign(document.createElement('li'), { textContent: 'None.' }));
        }
        watching.replaceChildren(...viewers.map((viewer) => {
            const item = document.createElement('li');
            item.dataset.viewerId = viewer.id;
            item.dataset.username = viewer.username;
            const how = viewer.share_id ? `through a share, ${modeName(viewer.view_only ? 'view_only' : 'interactive')}` : 'directly';
            item.append(`${viewer.username} (${how}) `, button('Drop', async () => {
                await act(() => call('DELETE', `${VIEWERS}/${encodeURIComponent(viewer.id)}`), `${viewer.username}'s viewer is closed.`);
            }));
            return item;
        }));
    } catch (error) {
        status.textContent = `Cannot list the shares: ${error.message}`;
    }
}

async function act(action, done) {
    try {
        await action();
        status.textContent = done;
    } catch (error) {
        status.textContent = error.message;
    }
    await refresh();
}

toggle.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute('aria-expanded', String(!panel.hidden));
    clearInterval(refresher);
    if (!panel.hidden) {
        refresh();
        // Viewers come and go: the list follows while the dialog is open.
        refresher = setInterval(refresh, 5000);
    }
});

form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const users = document.getElementById('share-users').value.split(/[\s,]+/).filter((name) => name.length > 0);
    status.textContent = 'Creating…';
    try {
        const share = await call('POST', SHARES, {
            mode: document.getElementById('share-mode').value,
            expires_in_minutes: Number(document.getElementById('share-expiry').value),
            users: users.length > 0 ? users : null,
        });
        link.value = new URL(share.url, location.origin).toString();
        linkRow.hidden = false;
        status.textContent = `Link created: ${modeName(share.mode)}, until ${new Date(share.expires_at).toLocaleString()}.`;
    } catch (error) {
        status.textContent = error.message;
    }
    await refresh();
});

document.getElementById('share-copy').addEventListener('click', async () => {
    try {
        await navigator.clipboard.writeText(link.value);
    } catch {
        link.select();
        document.execCommand('copy');
    }
    status.textContent = 'Link copied.';
});
