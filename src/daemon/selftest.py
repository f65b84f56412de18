# pyrunnerd's start-up self-test: run in a real sandbox, it tries the escapes
# the sandbox must stop and prints a JSON list of those that worked. Anything
# but [] keeps /run at 503 (fail closed).
import ctypes, json, os, socket
f = []
if os.getuid() == 0 or os.geteuid() == 0: f.append('user code runs as uid 0')
for p in ('/etc/shadow', '/root', '/home', '/sys', '/var'):
    if os.path.exists(p): f.append('host path visible: ' + p)
st = dict(l.split(':\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\t' in l)
for k in ('CapEff', 'CapPrm', 'CapBnd', 'CapAmb'):
    if int(st.get(k, '1'), 16): f.append(k + ' is not empty')
if st.get('Seccomp', '').strip() != '2': f.append('no seccomp filter')
if st.get('NoNewPrivs', '').strip() != '1': f.append('no_new_privs is off')
try:
    open('/usr/.pyrunner-selftest', 'w'); f.append('/usr is writable')
except OSError: pass
try:
    socket.create_connection(('1.1.1.1', 53), timeout=0.5); f.append('network reachable')
except OSError: pass
libc = ctypes.CDLL(None, use_errno=True)
# unshare by name: a syscall number would be another call on another arch.
if libc.unshare(0x10000000) == 0 or ctypes.get_errno() != 1: f.append('unshare(CLONE_NEWUSER) not refused')
if [p for p in os.listdir('/proc') if p.isdigit() and int(p) > 2 and int(p) != os.getpid()]:
    f.append('other processes visible')
print(json.dumps(f))
