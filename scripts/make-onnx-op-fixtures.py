#!/usr/bin/env python3
"""Makes test/fixtures/onnx-ops/: small ONNX models, one per op family, whose nodes sweep the
attributes our kernels implement (pooling ceil_mode/dilations/pads/count_include_pad, Resize
coordinate and nearest modes, Pad modes, ConvTranspose groups/strides/dilations/pads/
output_padding). test/ops-onnxruntime.test.ts runs them with ONNX Runtime and compares our kernels.

Needs the onnx and numpy Python packages (Debian: python3-onnx); run with /usr/bin/python3.
Random configurations use a fixed seed, so the files are reproducible.
"""
import json
import os
import random

import numpy as np
import onnx  # 1.12 is enough: the models are checked by ONNX Runtime when the test loads them
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'onnx-ops')
os.makedirs(OUT, exist_ok=True)


def save(nodes, inputs, outputs, name, opset, initializers=()):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)], producer_name='make-onnx-op-fixtures')
    model.ir_version = 8
    onnx.save(model, os.path.join(OUT, name + '.onnx'))


def value(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def pooling():
    rng = random.Random(5)
    cases, nodes, inputs, outputs = [], [], [], []
    while len(cases) < 40:
        op = rng.choice(['MaxPool', 'AveragePool'])
        k = [rng.randint(1, 3), rng.randint(1, 3)]
        s = [rng.randint(1, 3), rng.randint(1, 3)]
        d = [rng.randint(1, 3), rng.randint(1, 3)]
        pads = [rng.randint(0, k[0] - 1), rng.randint(0, k[1] - 1), rng.randint(0, k[0] - 1), rng.randint(0, k[1] - 1)]
        ceil = rng.randint(0, 1)
        h, w = rng.randint(3, 9), rng.randint(3, 9)
        if (k[0] - 1) * d[0] + 1 > h + pads[0] + pads[2] or (k[1] - 1) * d[1] + 1 > w + pads[1] + pads[3]:
            continue
        attrs = dict(kernel_shape=k, strides=s, dilations=d, pads=pads, ceil_mode=ceil)
        if op == 'AveragePool':
            attrs['count_include_pad'] = rng.randint(0, 1)
        i = len(cases)
        nodes.append(helper.make_node(op, [f'x{i}'], [f'y{i}'], **attrs))
        inputs.append(value(f'x{i}', [1, 2, h, w]))
        outputs.append(value(f'y{i}', None))
        cases.append(dict(op=op, shape=[1, 2, h, w], **attrs))
    save(nodes, inputs, outputs, 'pool', 19)
    return cases


CTMS = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn', 'half_pixel_symmetric']
NEAREST = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']


def resize():
    """One node per (mode, transformation, nearest mode) on a [1, 1, 1, n] input with the output
    size as an input, so that one model covers every size pair; and four with scales as input."""
    cases, nodes, inputs, outputs = [], [], [], []
    roi = numpy_helper.from_array(np.zeros([0], np.float32), 'roi')
    combos = [('nearest', c, n) for c in CTMS for n in NEAREST] + [('linear', c, None) for c in CTMS if c != 'tf_half_pixel_for_nn']
    for mode, ctm, nearest in combos:
        i = len(cases)
        attrs = dict(mode=mode, coordinate_transformation_mode=ctm)
        if nearest:
            attrs['nearest_mode'] = nearest
        nodes.append(helper.make_node('Resize', [f'x{i}', 'roi', '', f'sizes{i}'], [f'y{i}'], **attrs))
        inputs += [value(f'x{i}', [1, 1, 1, None]), value(f'sizes{i}', [4], TensorProto.INT64)]
        outputs.append(value(f'y{i}', None))
        cases.append(dict(input='sizes', mode=mode, ctm=ctm, nearest=nearest))
    for mode, ctm, nearest in [('nearest', 'asymmetric', 'floor'), ('nearest', 'half_pixel', 'round_prefer_floor'), ('linear', 'pytorch_half_pixel', None), ('linear', 'half_pixel', None)]:
        i = len(cases)
        attrs = dict(mode=mode, coordinate_transformation_mode=ctm)
        if nearest:
            attrs['nearest_mode'] = nearest
        nodes.append(helper.make_node('Resize', [f'x{i}', 'roi', f'scales{i}'], [f'y{i}'], **attrs))
        inputs += [value(f'x{i}', [1, 1, 1, None]), value(f'scales{i}', [4])]
        outputs.append(value(f'y{i}', None))
        cases.append(dict(input='scales', mode=mode, ctm=ctm, nearest=nearest))
    save(nodes, inputs, outputs, 'resize', 19, [roi])
    return cases


def pad():
    nodes, inputs, outputs, cases = [], [], [], []
    for i, mode in enumerate(['constant', 'reflect', 'edge']):
        nodes.append(helper.make_node('Pad', [f'x{i}', f'pads{i}', f'value{i}'], [f'y{i}'], mode=mode))
        inputs += [value(f'x{i}', [None, None, None, None]), value(f'pads{i}', [8], TensorProto.INT64), value(f'value{i}', [])]
        outputs.append(value(f'y{i}', None))
        cases.append(dict(mode=mode))
    save(nodes, inputs, outputs, 'pad', 13)
    return cases


def conv_transpose():
    rng = random.Random(11)
    nprng = np.random.default_rng(11)
    cases, nodes, inputs, outputs, inits = [], [], [], [], []
    while len(cases) < 24:
        g = rng.choice([1, 1, 2, 3])
        cg, mg = rng.randint(1, 3), rng.randint(1, 3)
        c, m = cg * g, mg * g
        kh, kw = rng.randint(1, 4), rng.randint(1, 4)
        s = [rng.randint(1, 3), rng.randint(1, 3)]
        d = [rng.randint(1, 2), rng.randint(1, 2)]
        op = [rng.randint(0, s[0] - 1), rng.randint(0, s[1] - 1)]  # ONNX Runtime needs output_padding < stride
        pads = [rng.randint(0, kh - 1), rng.randint(0, kw - 1), rng.randint(0, kh - 1), rng.randint(0, kw - 1)]
        h, w = rng.randint(1, 5), rng.randint(1, 5)
        if s[0] * (h - 1) + op[0] + d[0] * (kh - 1) + 1 - pads[0] - pads[2] < 1 or s[1] * (w - 1) + op[1] + d[1] * (kw - 1) + 1 - pads[1] - pads[3] < 1:
            continue
        i = len(cases)
        inits += [numpy_helper.from_array(nprng.uniform(-1, 1, (c, mg, kh, kw)).astype(np.float32), f'w{i}'),
                  numpy_helper.from_array(nprng.uniform(-1, 1, (m,)).astype(np.float32), f'b{i}')]
        attrs = dict(group=g, kernel_shape=[kh, kw], strides=s, dilations=d, pads=pads, output_padding=op)
        nodes.append(helper.make_node('ConvTranspose', [f'x{i}', f'w{i}', f'b{i}'], [f'y{i}'], **attrs))
        # The weights are outputs too, so that the test reads them from ONNX Runtime.
        nodes += [helper.make_node('Identity', [f'w{i}'], [f'w{i}_out']), helper.make_node('Identity', [f'b{i}'], [f'b{i}_out'])]
        inputs.append(value(f'x{i}', [2, c, h, w]))
        outputs += [value(f'y{i}', None), value(f'w{i}_out', None), value(f'b{i}_out', None)]
        cases.append(dict(shape=[2, c, h, w], **attrs))
    save(nodes, inputs, outputs, 'conv_transpose', 17, inits)
    return cases


if __name__ == '__main__':
    cases = dict(pool=pooling(), resize=resize(), pad=pad(), conv_transpose=conv_transpose())
    with open(os.path.join(OUT, 'cases.json'), 'w') as f:
        # One configuration a line.
        f.write('{\n' + ',\n'.join(f'"{k}": [\n' + ',\n'.join(json.dumps(c) for c in v) + '\n]' for k, v in cases.items()) + '\n}\n')
