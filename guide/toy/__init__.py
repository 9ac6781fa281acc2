"""The toy world: procedural 3D heads, a small EG3D generator trained to render them and two
small identity networks, all shipped with the package so an erase can be seen and measured on a
CPU. It says nothing about GUIDE's quality on real faces."""
