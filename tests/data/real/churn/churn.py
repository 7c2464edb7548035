# allocate and free 200 byte buffers of 4 KiB to 1 MiB
keep = []
for i in range(200):
    keep.append(bytearray(4096 << (i % 9)))
    if i % 2:
        keep.pop(0)
del keep
