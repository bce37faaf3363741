"""Training of small ANNs in numpy (``tr.train``), so that demos reproduce without PyTorch.

    from tianrt import train as T
    m = T.Sequential(T.Dense(64, 128), T.ReLU(), T.Dense(128, 10), input_shape=(64,), seed=0)
    m.fit(x, y, epochs=30, optimizer=T.Adam(1e-3, weight_decay=1e-4), val_split=0.1, patience=5)
    g = m.to_graph()          # a tr.Graph of tr.ann nodes, ready for tr.convert / tr.save

and spiking networks directly, by surrogate-gradient BPTT (``T.SNN``, docs/training.md).
"""
from .layers import (AvgPool2d, BatchNorm, ClippedReLU, Conv2d, Dense, Dropout, Flatten,
                     GlobalAvgPool2d, Layer, MaxPool2d, ReLU, Sigmoid, Tanh)
from .losses import CrossEntropyLoss, MSELoss, soft_target_loss, soft_targets
from .model import History, Sequential
from .optim import SGD, Adam, Optimizer
from .snn import DISTIL_TICKS, NO_TARGET, PADDING, SNN, tick_mask, tick_targets
from .snn_layers import Readout, SpikingLayer
from . import augment
from .augment import SpecAugment
from .stdp import STDP
from .surrogate import Arctan, FastSigmoid, Surrogate, Triangle

__all__ = ["Layer", "Dense", "Conv2d", "AvgPool2d", "MaxPool2d", "GlobalAvgPool2d", "Flatten", "ReLU",
           "ClippedReLU", "Sigmoid", "Tanh", "BatchNorm", "Dropout", "CrossEntropyLoss", "MSELoss",
           "soft_target_loss", "soft_targets",
           "SGD", "Adam", "Optimizer", "Sequential", "History",
           "SNN", "NO_TARGET", "PADDING", "DISTIL_TICKS", "tick_mask", "tick_targets",
           "SpikingLayer", "Readout", "SpecAugment", "STDP", "Surrogate", "FastSigmoid", "Arctan", "Triangle"]
