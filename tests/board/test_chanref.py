"""BOARD:CHANNEL, the one parser every config file, rule, scenario and CLI uses."""
import pytest

from boarddrv.chanref import ChannelRef, ChannelRefError, parse_channel_ref, split_board


def test_a_channel_of_a_named_board():
    ref = parse_channel_ref("hotline:4")
    assert ref == ChannelRef("hotline", 4) == ("hotline", 4)       # still a (board, chan) key
    assert str(ref) == "hotline:4" and ref.board == "hotline" and ref.chan == 4
    assert parse_channel_ref(" e1-a:030 ") == ("e1-a", 30)


def test_the_board_may_be_left_out_only_when_the_caller_says_which_it_is():
    assert parse_channel_ref("7", default_board="hotline") == ("hotline", 7)
    with pytest.raises(ChannelRefError, match="name the board"):
        parse_channel_ref("7")


@pytest.mark.parametrize("text", ["hotline:", "hotline:x", ":4", "hotline:4.0", "hotline:-1",
                                  "hotline:1234567", "hotline:４"])
def test_what_is_not_a_channel_says_what_was_expected(text):
    with pytest.raises(ChannelRefError) as exc:
        parse_channel_ref(text)
    assert repr(text.strip()) in str(exc.value) or repr(text) in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_split_board_keeps_what_follows_for_ranges_and_spans():
    assert split_board("hotline:1-4") == ("hotline", "1-4")
    assert split_board("e1a:span1") == ("e1a", "span1")
    assert split_board("0-3", default_board="hotline") == ("hotline", "0-3")
