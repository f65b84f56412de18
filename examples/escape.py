# What the sandbox refuses. Every line prints how it was stopped.
import ctypes
import os
import socket

def attempt(what, fn):
    try:
        fn()
        print(f"{what}: ALLOWED")
    except OSError as e:
        print(f"{what}: refused ({e.strerror})")

attempt("read /etc/shadow", lambda: open("/etc/shadow").read())
attempt("write /usr", lambda: open("/usr/owned", "w"))
attempt("connect out", lambda: socket.create_connection(("1.1.1.1", 53), timeout=1))
libc = ctypes.CDLL(None, use_errno=True)
def ptrace():
    if libc.syscall(101, 16, 1, 0, 0) != 0:  # PTRACE_ATTACH to pid 1
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
attempt("ptrace pid 1", ptrace)
print("visible processes:", [p for p in os.listdir("/proc") if p.isdigit()])
print("uid:", os.getuid(), "hostname:", socket.gethostname())
