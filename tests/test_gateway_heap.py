"""The gateway's collector policy (exchange.gateway.heap), in this process: what exists at install and the
survivors of every full pass are frozen; young passes freeze nothing; release undoes it all."""
import gc

from exchange.gateway import heap


def test_full_passes_freeze_their_survivors_and_release_undoes_it():
    thresholds = gc.get_threshold()
    try:
        heap.install()
        frozen = gc.get_freeze_count()
        assert frozen > 0 and gc.get_threshold() == (heap.GEN0_THRESHOLD, *thresholds[1:])
        kept = [[i] for i in range(1000)]  # 1,001 tracked lists that survive
        gc.collect(0)  # a young pass: nothing frozen
        assert gc.get_freeze_count() == frozen
        gc.collect()  # a full pass: its survivors (the lists above among them) are frozen
        assert gc.get_freeze_count() >= frozen + len(kept)
        garbage = [[i] for i in range(100)]
        garbage.append(garbage)  # a cycle that dies young is still collected
        del garbage
        assert gc.collect() >= 101
    finally:
        heap.release()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds and heap._freeze_survivors not in gc.callbacks
