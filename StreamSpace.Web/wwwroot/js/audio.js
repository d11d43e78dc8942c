// The session's sound (README "Sound"): Opus packets, one per binary message of the API's /audio/{id} WebSocket,
// decoded by WebCodecs' AudioDecoder and played through Web Audio. Each 20 ms packet becomes an AudioBuffer scheduled
// right after the one before on the AudioContext's clock, about TARGET seconds ahead of now: enough to ride out the
// network's jitter, little enough for sound to keep up with the picture. Audio that arrives late starts a new
// schedule at TARGET; audio that would play more than MAX ahead is dropped, so the delay never drifts upward.
// WebCodecs exists only in secure contexts (HTTPS, or http://localhost): elsewhere the viewer says so and opens nothing.

const SAMPLE_RATE = 48000;
const CHANNELS = 2;
const FRAME_MICROSECONDS = 20000;
const TARGET = 0.15;
const MAX = 0.4;

// Closes after which the sound stays off: normal closure, the sign-in ended (4401), the viewer revoked (4403), the
// session not running or ended (4409, 4410), the share ended (4411), no sound for this session (4415). Any other close
// (4307 replica stopping, 1006 dropped, the agent unreachable) is answered by reopening with a fresh ticket.
const TERMINAL = new Set([1000, 4401, 4403, 4409, 4410, 4411, 4415]);
const REPLICA_STOPPING = 4307;
const REOPEN_DELAY_MS = 2000;

export function soundSupported() {
    return window.isSecureContext && typeof AudioDecoder === 'function' && typeof AudioContext === 'function';
}

export class SessionSound {
    #context = null;
    #gain = null;
    #socket = null;
    #decoder = null;
    #next = 0;
    #timestamp = 0;
    #muted = false;
    #reopen;
    #reopenTimer = null;

    // reopen() is called when the socket closes for a reason that may heal (see TERMINAL): it opens the sound again
    // with a fresh ticket, unless muted. A replica stopping (4307) is answered at once, anything else after a pause.
    constructor(muted, reopen = () => {}) {
        this.#muted = muted;
        this.#reopen = reopen;
        // Browsers start an AudioContext suspended until the user interacts with the page (autoplay policy): the first
        // click or key in the page resumes it.
        const resume = () => this.#context?.resume();
        document.addEventListener('pointerdown', resume, { capture: true });
        document.addEventListener('keydown', resume, { capture: true });
    }

    get muted() {
        return this.#muted;
    }

    set muted(value) {
        this.#muted = value;
        if (this.#gain) {
            this.#gain.gain.value = value ? 0 : 1;
        }
        this.#context?.resume();
    }

    // Opens the audio WebSocket at url (absolute ws: or wss:), replacing any open one.
    open(url) {
        this.stop();
        if (!this.#context) {
            this.#context = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: 'interactive' });
            this.#gain = this.#context.createGain();
            this.#gain.gain.value = this.#muted ? 0 : 1;
            this.#gain.connect(this.#context.destination);
        }
        this.#context.resume().catch(() => { /* resumed on the first gesture instead */ });
        const decoder = new AudioDecoder({
            output: (data) => this.#play(data),
            error: () => { /* a broken packet ends this decoder; the next connection makes a new one */ },
        });
        decoder.configure({ codec: 'opus', sampleRate: SAMPLE_RATE, numberOfChannels: CHANNELS });
        this.#decoder = decoder;
        this.#timestamp = 0;
        this.#next = 0;
        const socket = new WebSocket(url);
        socket.binaryType = 'arraybuffer';
        socket.addEventListener('message', (event) => {
            if (decoder.state !== 'configured' || !(event.data instanceof ArrayBuffer)) {
                return;
            }
            decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: this.#timestamp, data: event.data }));
            this.#timestamp += FRAME_MICROSECONDS;
        });
        socket.addEventListener('close', (event) => {
            // A socket stop() closed, or one replaced since, is not this connection's sound ending.
            if (this.#socket !== socket || this.#muted || TERMINAL.has(event.code)) {
                return;
            }
            this.stop();
            this.#reopenTimer = setTimeout(() => {
                this.#reopenTimer = null;
                if (!this.#muted && !this.#socket) {
                    this.#reopen();
                }
            }, event.code === REPLICA_STOPPING ? 0 : REOPEN_DELAY_MS);
        });
        this.#socket = socket;
    }

    // Closes the WebSocket (the agent stops capturing) and the decoder; the AudioContext stays for the next connection.
    stop() {
        clearTimeout(this.#reopenTimer);
        this.#reopenTimer = null;
        this.#socket?.close();
        this.#socket = null;
        if (this.#decoder && this.#decoder.state !== 'closed') {
            this.#decoder.close();
        }
        this.#decoder = null;
    }

    close() {
        this.stop();
        this.#context?.close();
        this.#context = null;
    }

    #play(data) {
        const context = this.#context;
        try {
            if (!context || context.state !== 'running') {
                return;
            }
            const buffer = context.createBuffer(CHANNELS, data.numberOfFrames, data.sampleRate);
            copyChannels(data, buffer);
            const now = context.currentTime;
            if (this.#next < now + 0.01) {
                this.#next = now + TARGET;
            }
            if (this.#next > now + MAX) {
                return;
            }
            const source = context.createBufferSource();
            source.buffer = buffer;
            source.connect(this.#gain);
            source.start(this.#next);
            this.#next += buffer.duration;
        } finally {
            data.close();
        }
    }
}

// AudioData → AudioBuffer, whichever layout the decoder chose (planar or interleaved 32-bit float).
function copyChannels(data, buffer) {
    const channels = Math.min(data.numberOfChannels, buffer.numberOfChannels);
    if (data.format === 'f32-planar') {
        for (let channel = 0; channel < channels; channel++) {
            data.copyTo(buffer.getChannelData(channel), { planeIndex: channel });
        }
        return;
    }
    try {
        for (let channel = 0; channel < channels; channel++) {
            data.copyTo(buffer.getChannelData(channel), { planeIndex: channel, format: 'f32-planar' });
        }
    } catch {
        const interleaved = new Float32Array(data.numberOfFrames * data.numberOfChannels);
        data.copyTo(interleaved, { planeIndex: 0, format: 'f32' });
        for (let channel = 0; channel < channels; channel++) {
            const out = buffer.getChannelData(channel);
            for (let frame = 0; frame < data.numberOfFrames; frame++) {
                out[frame] = interleaved[frame * data.numberOfChannels + channel];
            }
        }
    }
}
