// The recording player (README "Recording"). A recording file (RecordingFormat in StreamSpace.Contracts: "SSRFB001",
// then records of a 4-byte big-endian time in ms, a 4-byte big-endian length and that many bytes the VNC server sent;
// the first record is its ServerInit, a record of length 0 marks the end) is what the server said to the agent's own
// RFB connection, in noVNC's own pixel format. So noVNC replays it as it is: it gets a fake WebSocket-like channel that
// plays the server's part of a handshake (version 3.8, security None, result OK), then the ServerInit and the records
// at their times; what noVNC sends back (its requests, its pixel format, which the recording already uses) is dropped.
// Seeking back starts a fresh RFB fed at once up to the target: noVNC's decoders (ZRLE's zlib stream) are stateful,
// so a stream cannot be entered in the middle.
import RFB from '../lib/novnc/core/rfb.js';

const root = document.getElementById('player');
const screen = document.getElementById('player-screen');
const status = document.getElementById('player-status');
const playButton = document.getElementById('player-play');
const seekBar = document.getElementById('player-seek');
const timeLabel = document.getElementById('player-time');
const speedSelect = document.getElementById('player-speed');

const MAGIC = 'SSRFB001';
const HEADER_BYTES = 8;
const TICK_MS = 20;

/** The server's side of an RFB connection, played from a recording; noVNC reads it as it reads a WebSocket. */
class ReplayChannel {
    constructor() {
        this.binaryType = 'arraybuffer';
        this.protocol = '';
        this.readyState = 'connecting';
        this.onopen = null;
        this.onmessage = null;
        this.onclose = null;
        this.onerror = null;
    }

    open() {
        this.readyState = 'open';
        this.onopen?.();
    }

    /** Hands noVNC bytes as the server would have sent them; noVNC takes each message whole, synchronously. */
    push(bytes) {
        if (this.readyState === 'open') {
            this.onmessage?.({ data: bytes.slice().buffer });
        }
    }

    send() {
        // What the viewer says to the server does not change a recording.
    }

    close() {
        if (this.readyState !== 'closed') {
            this.readyState = 'closed';
            this.onclose?.({ code: 1000, reason: '', wasClean: true });
        }
    }
}

/** The recording's records: [{ at (ms), bytes (Uint8Array) }], and its duration (the end marker's time, or the last record's). */
function parse(buffer) {
    const data = new Uint8Array(buffer);
    if (data.length < MAGIC.length || new TextDecoder().decode(data.subarray(0, MAGIC.length)) !== MAGIC) {
        throw new Error('this is not a StreamSpace recording');
    }
    const view = new DataView(buffer);
    const records = [];
    let duration = 0;
    for (let offset = MAGIC.length; offset + HEADER_BYTES <= data.length;) {
        const at = view.getUint32(offset);
        const length = view.getInt32(offset + 4);
        offset += HEADER_BYTES;
        duration = Math.max(duration, at);
        if (length === 0) {
            break;
        }
        if (length < 0 || offset + length > data.length) {
            // A recording cut short (its agent died mid-record) ends at its last whole record.
            break;
        }
        records.push({ at, bytes: data.subarray(offset, offset + length) });
        offset += length;
    }
    if (records.length === 0) {
        throw new Error('the recording is empty');
    }
    return { records, duration };
}

const HANDSHAKE = [
    new TextEncoder().encode('RFB 003.008\n'),
    new Uint8Array([1, 1]), // one security type: None
    new Uint8Array([0, 0, 0, 0]), // SecurityResult: OK
];

let records = [];
let duration = 0;
let rfb = null;
let channel = null;
let next = 0; // the index of the next record to feed
let position = 0; // ms into the recording
let playing = false;
let lastTick = 0;

function formatTime(ms) {
    const seconds = Math.floor(ms / 1000);
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    const rest = String(seconds % 60).padStart(2, '0');
    return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

function setState(state, text) {
    root.dataset.state = state;
    status.textContent = text;
}

function showPosition() {
    seekBar.value = String(Math.round(position));
    timeLabel.textContent = `${formatTime(position)} / ${formatTime(duration)}`;
    root.dataset.position = String(Math.round(position));
}

/** A fresh noVNC that has been through the handshake and the ServerInit: the recording's start. */
function restart() {
    if (rfb) {
        rfb.disconnect();
    }
    screen.replaceChildren();
    channel = new ReplayChannel();
    rfb = new RFB(screen, channel, { shared: true });
    rfb.viewOnly = true;
    rfb.scaleViewport = false;
    rfb.resizeSession = false;
    channel.open();
    for (const message of HANDSHAKE) {
        channel.push(message);
    }
    channel.push(records[0].bytes);
    next = 1;
    position = 0;
}

/** Feeds every record up to the time <at>. */
function feedUntil(at) {
    while (next < records.length && records[next].at <= at) {
        channel.push(records[next].bytes);
        next++;
    }
}

function seek(at) {
    const target = Math.max(0, Math.min(duration, at));
    if (next > 1 && target < records[next - 1].at) {
        restart();
    }
    position = target;
    feedUntil(position);
    showPosition();
}

function setPlaying(value) {
    playing = value;
    lastTick = performance.now();
    playButton.textContent = playing ? 'Pause' : 'Play';
    if (playing) {
        setState('playing', 'Playing');
    } else {
        setState(position >= duration ? 'ended' : 'paused', position >= duration ? 'Ended' : 'Paused');
    }
}

function tick() {
    const now = performance.now();
    if (playing) {
        position = Math.min(duration, position + (now - lastTick) * Number(speedSelect.value));
        feedUntil(position);
        showPosition();
        if (position >= duration) {
            setPlaying(false);
        }
    }
    lastTick = now;
}

playButton.addEventListener('click', () => {
    if (!playing && position >= duration) {
        seek(0);
    }
    setPlaying(!playing);
});

seekBar.addEventListener('input', () => {
    seek(Number(seekBar.value));
    lastTick = performance.now();
});

async function load() {
    try {
        const response = await fetch(root.dataset.fileUrl, { credentials: 'same-origin' });
        if (!response.ok) {
            let problem = {};
            try { problem = await response.json(); } catch { /* not JSON */ }
            throw new Error(problem.detail ?? problem.title ?? `the API answered ${response.status}`);
        }
        ({ records, duration } = parse(await response.arrayBuffer()));
    } catch (error) {
        setState('failed', `Cannot play the recording: ${error.message}`);
        return;
    }
    seekBar.max = String(duration);
    seekBar.disabled = false;
    playButton.disabled = false;
    restart();
    showPosition();
    setInterval(tick, TICK_MS);
    setPlaying(true);
}

load();
