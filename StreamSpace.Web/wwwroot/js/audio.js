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

    constructor(muted) {
        this.#muted = muted;
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
        this.#socket = socket;
    }

    // Closes the WebSocket (the agent stops capturing) and the decoder; the AudioContext stays for the next connection.
    stop() {
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
