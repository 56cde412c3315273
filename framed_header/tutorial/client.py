# The classic Python socket tutorial's client, unchanged but for the
# address: SERVER is this machine, and PORT (5050, as in the tutorial) may
# be given as the first argument. It sends three messages and the goodbye,
# each with a 64-byte header; press Enter between messages.
#   python3 framed_header/tutorial/client.py          (port 5050)
#   python3 framed_header/tutorial/client.py 6000     (another port)
import socket, sys

HEADER = 64
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 5050
FORMAT = 'utf-8'
DISCONNECT_MESSAGE = "!DISCONNECT"
SERVER = "127.0.0.1"
ADDR = (SERVER, PORT)

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(ADDR)

def send(msg):
    message = msg.encode(FORMAT)
    msg_length = len(message)
    send_length = str(msg_length).encode(FORMAT)
    send_length += b' ' * (HEADER - len(send_length))
    client.send(send_length)
    client.send(message)
    print(client.recv(2048).decode(FORMAT))

send("Hello World!")
input()
send("Hello Everyone!")
input()
send("Hello Tim!")

send(DISCONNECT_MESSAGE)
