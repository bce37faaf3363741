"""tianrt.firmware_sim: the chip emulator (cores, router, counters, serial protocol server).

Never imports the graph or the runtime: only tianrt.kernels and the image/protocol
format module.
"""
