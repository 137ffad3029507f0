"""The per-channel input statistics the Inception family's weights were trained with.

ImageNet's RGB mean and std (torchvision's GoogLeNet from scratch, BN-Inception's PyTorch ports) and
TF-slim's ``[-1, 1]`` input (Inception v3, v4, Inception-ResNet v2). A leaf: every layer may use them.
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)  # TF-slim: x / 127.5 - 1
INCEPTION_STD = (0.5, 0.5, 0.5)
