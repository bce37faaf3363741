"""placeholder"""
def read_onnx(*a, **k):
    raise NotImplementedError
