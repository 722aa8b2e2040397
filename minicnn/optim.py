"""Optimizers, written out: plain gradient descent with momentum, and Adam.

Both update arrays in place, given gradients in the same order. ``sign=-1`` (the default)
descends (training: minimize a loss); feature visualization passes ``sign=+1`` to *ascend*.
"""
from .backend import get_xp


class SGD:
    """v = momentum * v + g;  p += sign * lr * v   (momentum=0: plain gradient steps)."""

    def __init__(self, params, lr=0.01, momentum=0.9, sign=-1):
        self.params, self.lr, self.momentum, self.sign = list(params), lr, momentum, sign
        self.velocity = [get_xp(p).zeros_like(p) for p in self.params]

    def step(self, grads):
        for p, g, v in zip(self.params, grads, self.velocity):
            v *= self.momentum
            v += g
            p += self.sign * self.lr * v


class Adam:
    """Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization").

    Running averages of the gradient (m) and of its square (v), bias-corrected for their
    zero start; each parameter's step is lr * m_hat / (sqrt(v_hat) + eps): about lr in size
    whatever the gradient's scale, which is why one learning rate works for every layer.
    ``weight_decay`` shrinks every parameter a little each step (decoupled from m and v).
    """

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, sign=-1, weight_decay=0.0):
        self.params, self.lr, self.sign = list(params), lr, sign
        self.weight_decay = weight_decay  # decoupled (AdamW, Loshchilov & Hutter 2019): p -= lr*wd*p
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [get_xp(p).zeros_like(p) for p in self.params]
        self.v = [get_xp(p).zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            xp = get_xp(p)
            m *= b1
            m += (1 - b1) * g                # m = b1 m + (1 - b1) g
            v *= b2
            v += (1 - b2) * g * g            # v = b2 v + (1 - b2) g^2
            m_hat = m / (1 - b1 ** self.t)
            v_hat = v / (1 - b2 ** self.t)
            if self.weight_decay:
                p -= self.lr * self.weight_decay * p
            p += self.sign * self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)
