# The classic Python socket tutorial's server, bugs included (that is the
# point: `framed_header check --header-size 64 --raw-replies` finds them).
# Changed only: SERVER is this machine (the tutorial binds to its network
# address), PORT (5050, as in the tutorial) may be given as the first
# argument (0: any free port), a first line `listening on HOST:PORT` says
# where it listens in the words of our contract (it replaces the
# tutorial's "[STARTING]" line), and threading.active_count() replaces
# activeCount(), deprecated since Python 3.10.
#   python3 framed_header/tutorial/server.py          (port 5050)
# Stop it with Ctrl-C (twice if a client thread is still running: its
# threads are not daemons). Careful: a client that closes without
# !DISCONNECT leaves its thread spinning at 100% CPU.
import socket, sys
import threading

HEADER = 64
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 5050
SERVER = "127.0.0.1"
ADDR = (SERVER, PORT)
FORMAT = 'utf-8'
DISCONNECT_MESSAGE = "!DISCONNECT"

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(ADDR)

def handle_client(conn, addr):
    print(f"[NEW CONNECTION] {addr} connected.")

    connected = True
    while connected:
        msg_length = conn.recv(HEADER).decode(FORMAT)
        if msg_length:
            msg_length = int(msg_length)
            msg = conn.recv(msg_length).decode(FORMAT)
            if msg == DISCONNECT_MESSAGE:
                connected = False

            print(f"[{addr}] {msg}")
            conn.send("Msg received".encode(FORMAT))

    conn.close()


def start():
    server.listen()
    host, port = server.getsockname()
    print(f"listening on {host}:{port}", flush=True)
    print(f"[LISTENING] Server is listening on {SERVER}")
    while True:
        conn, addr = server.accept()
        thread = threading.Thread(target=handle_client, args=(conn, addr))
        thread.start()
        print(f"[ACTIVE CONNECTIONS] {threading.active_count() - 1}")


start()
