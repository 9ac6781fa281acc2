"""The toy effect tests' yardstick: erase toy identities with GUIDE intact and broken on purpose.

    python scripts/toy_breakage.py [--ids 0,1,2] [--breaks all] [--weights guide/toy/weights]

For each break (``intact``, ``sign-flip``: UFO target on the same side as w_u; ``target-w_u``: the
local and adjacency losses aimed at w_u itself; ``target-average``: GUIDE with the baseline's w_avg
target; ``no-adjacency``; ``no-global``; plus ``baseline``: the baseline preset, intact) and each
identity seed, it runs the toy erase the tests run (:func:`guide.toy.effect.erase_toy`, toy preset)
and prints one JSON line of :class:`guide.toy.effect.Effect` numbers. The thresholds in
``tests/guide/toy/test_effect.py`` sit between the intact and the broken values printed here.
"""
from __future__ import annotations

import argparse
import json
from contextlib import contextmanager

BREAKS = ("intact", "baseline", "sign-flip", "target-w_u", "target-average", "no-adjacency", "no-global")


@contextmanager
def broken(name: str):
    """Patch guide.ufo / the toy preset so the erase runs with break ``name``; restore afterwards."""
    import guide.toy.world as world_module
    import guide.ufo as ufo

    real_target, real_config = ufo.ufo_target, world_module.toy_erase_config

    def target(method, w_u, w_avg, distance=ufo.DEFAULT_DISTANCE):
        if name == "sign-flip":
            return 2 * w_avg - real_target(method, w_u, w_avg, distance)
        if name == "target-w_u":
            return w_u.clone()
        if name == "target-average":
            return real_target("average", w_u, w_avg, distance)
        return real_target(method, w_u, w_avg, distance)

    def config(method="guide", iters=world_module.TOY_ITERS, seed=0):
        cfg = real_config(method, iters, seed)
        if name == "no-adjacency":
            cfg.ltu.losses.adjacency = False
        if name == "no-global":
            cfg.ltu.losses.global_preservation = False
        return cfg

    ufo.ufo_target, world_module.toy_erase_config = target, config
    try:
        yield
    finally:
        ufo.ufo_target, world_module.toy_erase_config = real_target, real_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", default="0,1,2", help="toy identity seeds, comma-separated")
    parser.add_argument("--breaks", default="all", help=f"comma-separated subset of {', '.join(BREAKS)}")
    parser.add_argument("--weights", default=None, help="toy-world weights folder (default: the shipped one)")
    args = parser.parse_args()
    from guide.toy.effect import erase_toy, measure_effect
    from guide.toy.world import WEIGHTS_DIR, toy_world

    names = BREAKS if args.breaks == "all" else tuple(args.breaks.split(","))
    unknown = sorted(set(names) - set(BREAKS))
    if unknown:
        parser.error(f"unknown break(s) {', '.join(unknown)}; choose from {', '.join(BREAKS)}")
    world = toy_world("cpu", args.weights or WEIGHTS_DIR)
    for name in names:
        for identity in (int(i) for i in args.ids.split(",")):
            with broken(name):
                erase = erase_toy(world, "baseline" if name == "baseline" else "guide", identity)
            effect = measure_effect(world, erase).to_dict()
            print(json.dumps({"break": name, "identity": identity, **effect}), flush=True)


if __name__ == "__main__":
    main()
