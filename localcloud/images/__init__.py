"""The process runtime's images: Dockerfiles built without Docker, run by Lambda and ECS.

`build` turns a build context into an image of the local store and registers its manifest
in the local ECR; `load_local_image(digest)` is what the Lambda and ECS providers read.
"""

from .local import build
from .store import ImageBuildError, LocalBuild, images_root, load_local_image, local_image_dir

__all__ = [
    "ImageBuildError",
    "LocalBuild",
    "build",
    "images_root",
    "load_local_image",
    "local_image_dir",
]
