# Runs into the memory limit: the run ends with status memory_exceeded.
blocks = []
while True:
    blocks.append(bytearray(64 << 20))
