#!/bin/sh
# Runs one session: Xvnc on $VNC_PORT (all interfaces: the agent dials the pod's IP), openbox, then the program
# given as arguments (the image's CMD). The session ends when Xvnc ends. Mirrors the local platform's script.
set -eu

display=:1
password_file=/tmp/vncpasswd
if [ -n "${VNC_PASSWORD_FILE:-}" ]; then
  # The Kubernetes agent's way: TigerVNC's password file from the session's Secret, 8 random bytes that no text
  # password could carry.
  password_file=$VNC_PASSWORD_FILE
  if [ ! -r "$password_file" ]; then
    echo "error: VNC_PASSWORD_FILE $password_file is not readable by uid $(id -u); a session never runs without a VNC password" >&2
    exit 2
  fi
elif [ -n "${VNC_PASSWORD:-}" ]; then
  (umask 077 && printf '%s\n' "$VNC_PASSWORD" | vncpasswd -f >"$password_file")
else
  echo "error: VNC_PASSWORD or VNC_PASSWORD_FILE is required; a session never runs without a VNC password" >&2
  exit 2
fi

# The session's sound (STREAMSPACE_AUDIO=1, the template's audio): a PulseAudio of its own beside Xvnc, as this user,
# from no system or user config: one socket in a folder of mode 0700 and a null sink as its only, default, output. It
# mirrors the local platform's. The file service captures it for the agent (STREAMSPACE_SOUND_SOCKET), so the pod
# needs no port of its own for sound; the program plays into it through PULSE_SERVER.
sound_socket=
if [ "${STREAMSPACE_AUDIO:-0}" = 1 ] && command -v pulseaudio >/dev/null 2>&1; then
  sound_dir=/tmp/streamspace-sound
  (umask 077 && mkdir -p "$sound_dir")
  sound_socket=$sound_dir/native
  env -u DISPLAY PULSE_RUNTIME_PATH="$sound_dir" PULSE_STATE_PATH="$sound_dir" \
    pulseaudio -n --daemonize=no --use-pid-file=no --system=no --exit-idle-time=-1 --disallow-module-loading \
    --realtime=no --high-priority=no --disable-shm=yes --log-target=stderr --log-level=error \
    --load="module-native-protocol-unix socket=$sound_socket auth-anonymous=1 auth-cookie-enabled=0" \
    --load="module-null-sink sink_name=session rate=48000 channels=2" </dev/null &
  export PULSE_SERVER="unix:$sound_socket" PULSE_LATENCY_MSEC="${PULSE_LATENCY_MSEC:-60}"
fi

# The file service: ~/Uploads and ~/Downloads for the agent, which must prove the session's files key (the file
# STREAMSPACE_FILES_KEY_FILE names, from the session's Secret) first. It is the agent's own files-serve mode, run as
# this user; run from its own folder so that no appsettings.json in the home configures it. A session whose pod names
# no key has none, and an image without /opt/streamspace gets the agent's "cannot be reached" for files, nothing worse.
files_service=/opt/streamspace/agent/StreamSpace.Agent.dll
if [ -n "${STREAMSPACE_FILES_KEY_FILE:-}" ] && [ -f "$files_service" ]; then
  (cd /opt/streamspace/agent && exec env DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_EnableDiagnostics=0 DOTNET_NOLOGO=1 \
    STREAMSPACE_SOUND_SOCKET="$sound_socket" \
    /opt/streamspace/dotnet/dotnet "$files_service" files-serve) &
fi

# The geometry lasts until the first viewer connects: the viewer asks for its own size with SetDesktopSize (RandR).
# The template's clipboard directions are Xvnc's own settings, and -AllowOverride=desktop keeps clients in the session
# (vncconfig -set SendCutText=1) from changing them back.
Xvnc "$display" -rfbport "${VNC_PORT:-5900}" -SecurityTypes VncAuth -PasswordFile "$password_file" \
  -geometry "${VNC_GEOMETRY:-1280x800}" -depth 24 -nolisten tcp -AlwaysShared -desktop "${SESSION_ID:-streamspace}" \
  -SendCutText="${VNC_SEND_CUT_TEXT:-1}" -AcceptCutText="${VNC_ACCEPT_CUT_TEXT:-1}" -AllowOverride=desktop &
xvnc=$!
for _ in $(seq 1 100); do
  [ -S /tmp/.X11-unix/X1 ] && break
  sleep 0.05
done
export DISPLAY="$display"

# The program starts once openbox manages windows (it runs --startup then): a window mapped while openbox is still
# starting can be lost, left unmapped and never shown.
wm_ready=/tmp/openbox-ready
rm -f "$wm_ready"
mkfifo "$wm_ready"
openbox --startup "sh -c 'echo >$wm_ready'" >/dev/null 2>&1 &
read -r _ <"$wm_ready"
rm -f "$wm_ready"
if [ $# -gt 0 ]; then
  (cd "$HOME" && exec "$@") &
fi
wait "$xvnc"
