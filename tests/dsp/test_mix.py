"""Playback kernel against a plain numpy model of the same playlists."""
import numpy as np
import pytest

from dsp.checks import AudioArrayError
from dsp.mix import AudioBank, Player, add_rows


def reference_play(segments, nblocks, block):
    """What a channel should hear: segments back to back, each starting on a block boundary."""
    out = []
    for seg in segments:
        padded = -(-len(seg) // block) * block
        out.append(np.concatenate([seg, np.zeros(padded - len(seg), np.int16)]))
    flat = np.concatenate(out) if out else np.zeros(0, np.int16)
    flat = np.concatenate([flat, np.zeros(nblocks * block, np.int16)])[: nblocks * block]
    return flat


def test_playlists_match_reference_and_report_end_once():
    rng = np.random.default_rng(1)
    bank = AudioBank(capacity=16)  # forces growth while adding
    clips = [rng.integers(-20000, 20000, size=n, dtype=np.int16) for n in (1, 159, 160, 161, 1000, 333)]
    segs = [bank.add(c, name=f"c{i}") for i, c in enumerate(clips)]
    nchan, block, nblocks = 5, 160, 20
    player = Player(nchan, bank)
    plans = {0: [0, 1, 2], 1: [3], 2: [], 3: [4, 5, 4], 4: [5]}
    for ch, idx in plans.items():
        player.play(ch, [segs[i] for i in idx])
    heard = np.zeros((nchan, nblocks * block), np.int16)
    ended = {}
    for b in range(nblocks):
        out = np.full((nchan, block), 7, np.int16)  # junk: playback must overwrite it
        for ch in player.tx(out):
            assert ch not in ended, "a playlist end is reported once"
            ended[ch] = b
        heard[:, b * block:(b + 1) * block] = out
    for ch, idx in plans.items():
        if not idx:
            continue  # idle channel: untouched by the player
        want = reference_play([clips[i] for i in idx], nblocks, block)
        # After its playlist ends the player leaves the channel alone (the
        # engine clears tx each tick), so the junk shows from the next block.
        played = (ended[ch] + 1) * block
        np.testing.assert_array_equal(heard[ch, :played], want[:played])
        assert (heard[ch, played:] == 7).all()
    assert set(ended) == {0, 1, 3, 4}
    assert ended[1] == 1  # 161 samples: two blocks
    assert ended[0] == 2  # 1, 159 and 160 samples: one block each
    assert ended[3] == 7 + 3 + 7 - 1  # 1000, 333, 1000 samples
    assert not player.busy(0)


def test_gain_mix_loop_and_stop():
    bank = AudioBank()
    tone = np.full(100, 1000, np.int16)
    seg = bank.add(tone)
    p = Player(2, bank)
    p.play(0, [seg], gain_db=-6.0206, mix=True, loop=True)
    out = np.full((2, 80), 100, np.int16)
    assert p.tx(out) == []
    np.testing.assert_array_equal(out[0], np.full(80, 600, np.int16))
    np.testing.assert_array_equal(out[1], np.full(80, 100, np.int16))
    for _ in range(10):  # a looping playlist never ends
        assert p.tx(np.zeros((2, 80), np.int16)) == []
    assert p.stop(0) and not p.busy(0) and not p.stop(0)


def test_saturation_and_bad_arguments():
    bank = AudioBank()
    seg = bank.add(np.full(10, 30000, np.int16))
    p = Player(1, bank)
    p.play(0, [seg], mix=True)
    out = np.full((1, 10), 30000, np.int16)
    p.tx(out)
    assert out.max() == 32767
    with pytest.raises(AudioArrayError, match=r"Player.tx: expected int16\[1, n\], got float32"):
        p.tx(np.zeros((1, 10), np.float32))
    with pytest.raises(IndexError, match="out of range"):
        p.play(3, [seg])
    with pytest.raises(AudioArrayError, match=r"AudioBank.add: expected int16\[n\], got float64\[4\]"):
        bank.add(np.zeros(4, np.float64))


def test_add_rows_bridges():
    src = np.arange(12, dtype=np.int16).reshape(3, 4)
    out = np.ones((3, 4), np.int16)
    add_rows(out, src, np.array([0, 2]), np.array([2, 0]))
    np.testing.assert_array_equal(out[0], 1 + src[2])
    np.testing.assert_array_equal(out[2], 1 + src[0])
    np.testing.assert_array_equal(out[1], np.ones(4, np.int16))
