# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading raw game files: exact positions, skips by reason, formats, sampling."""

from __future__ import annotations

import bz2
import gzip
import random
from pathlib import Path

import chess
import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from chesspos_positions import Summary, board_to_token_sequence, encode_boards, extract_board, iter_position_records
from chesspos_positions.games import SKIP_REASONS, start_game, start_games
from chesspos_positions.pgn import decode_line, split_games, split_text
from chesspos_positions.sampling import Sampling, first_draws, game_rng
from chesspos_positions.sources import InputError
from pgn_fixtures import BAD_CASES, BAD_FILE_GOOD_MOVES, bad_input_text, legal_games, replay, write_pgn

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def tokens_of(boards: list[chess.Board]) -> list[list[int]]:
    return [board_to_token_sequence(b).tolist() for b in boards]


def assert_same_positions(got: list[chess.Board], expected: list[chess.Board]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.fen() == e.fen()


@pytest.fixture(scope="module")
def games_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    games = legal_games(seed=7, n=40)
    return write_pgn(tmp_path_factory.mktemp("pgn") / "games.pgn", games), games


def test_all_mode_yields_every_position_of_every_game(games_file) -> None:
    path, games = games_file
    summary = Summary()
    got = list(extract_board(path, sampling="all", summary=summary))
    assert_same_positions(got, [b for g in games for b in g.boards])
    assert any("FEN" in g.pgn for g in games)
    assert summary.games_read == summary.games_kept == 40
    assert summary.positions == len(got)


def test_bad_input_games_are_skipped_whole_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "bad.pgn"
    path.write_text(bad_input_text())
    summary = Summary()
    got = list(extract_board(path, sampling="all", summary=summary))
    assert_same_positions(got, [b for moves in BAD_FILE_GOOD_MOVES for b in replay(moves)])
    expected = {reason: sum(1 for r, _ in BAD_CASES if r == reason) for reason in SKIP_REASONS}
    assert summary.as_dict()["skipped"] == expected
    assert summary.games_read == len(BAD_CASES)
    assert summary.games_kept == 2


def test_headers_belong_to_their_own_game(tmp_path: Path) -> None:
    # No blank line between games, a header-only game, a ChessBase blank line
    # inside a tag section: each record must carry its own game's headers.
    text = (
        '[Event "A"]\n[White "a"]\n\n1. e4 e5 1-0\n'
        '[Event "B"]\n[White "b"]\n\n1. d4 0-1\n\n'
        '[Event "C"]\n[White "c"]\n\n'
        '[Event "D"]\n\n[White "d"]\n[Black "dd"]\n\n1. c4 *\n'
    )
    path = tmp_path / "h.pgn"
    path.write_text(text)
    summary = Summary()
    records = list(iter_position_records(path, sampling="all", summary=summary))
    assert [(r.headers["Event"], r.ply, r.board.fen()) for r in records] == [
        ("A", 1, replay(["e4"])[0].fen()),
        ("A", 2, replay(["e4", "e5"])[1].fen()),
        ("B", 1, replay(["d4"])[0].fen()),
        ("D", 1, replay(["c4"])[0].fen()),
    ]
    assert records[-1].headers["White"] == "d"
    assert summary.games_read == 4 and summary.skipped["no_moves"] == 1


def test_real_world_formatting(tmp_path: Path) -> None:
    text = (
        "% escape line\n"
        '[Event "fmt"]\r\n[White "Ren\xe9"]\r\n\r\n'
        "{ a comment before the first move } 1. e4 $1 e5!? (1... c5 2. Nf3 (2. c3) d6) 2. Nf3 ; rest of line\r\n"
        "{ a comment\r\n\r\nwith a blank line } Nc6 3. Bb5 {[%clk 0:03:00]} *\r\n"
    )
    path = tmp_path / "latin1-crlf.pgn"
    path.write_bytes(text.encode("latin-1"))
    records = list(iter_position_records(path, sampling="all"))
    assert_same_positions([r.board for r in records], replay(["e4", "e5", "Nf3", "Nc6", "Bb5"]))
    assert records[0].headers["White"] == "Ren\xe9"

    bom = tmp_path / "bom.pgn"
    bom.write_bytes(b"\xef\xbb\xbf" + '[Event "bom"]\n[White "Jos\u00e9"]\n\n1. e4 *\n'.encode())
    (record,) = iter_position_records(bom, sampling="all")
    assert record.headers == {"Event": "bom", "White": "Jos\u00e9"}


def test_a_byte_order_mark_inside_a_file_opens_the_next_game(tmp_path: Path) -> None:
    # Two exports joined by `cat`: the second one's mark is inside the file, before its first tag.
    fen = "rnbqkbnr/1ppppppp/8/p7/8/8/1PPPPPPP/RNBQKBNR w KQkq - 0 1"
    first = '[Event "b1"]\n\n1. d4 *\n\n'
    second = f'[FEN "{fen}"]\n[SetUp "1"]\n[Event "b2"]\n\n1. e4 *\n'
    text = b"\xef\xbb\xbf" + first.encode() + b"\xef\xbb\xbf" + second.encode()
    path = tmp_path / "joined.pgn"
    path.write_bytes(text)
    summary = Summary()
    got = list(extract_board(path, sampling="all", summary=summary))
    assert_same_positions(got, replay(["d4"]) + replay(["e4"], fen))
    assert summary.games_read == summary.games_kept == 2
    # The publish path cuts work units with split_text; the file's own first mark its reader drops.
    games = list(split_text(text.removeprefix(b"\xef\xbb\xbf"), str(path)))
    assert [g.tags for g in games] == [('[Event "b1"]',), (f'[FEN "{fen}"]', '[SetUp "1"]', '[Event "b2"]')]


def test_the_library_refuses_binary_input_as_publish_does(tmp_path: Path) -> None:
    games = "".join(f'[Event "g{i}"]\n\n1. e4 e5 *\n\n' for i in range(40_000)).encode()  # past one read block
    data = b"\xef\xbb\xbf" + games + random.Random(0).randbytes(10_000)
    path = tmp_path / "binary.pgn"
    path.write_bytes(data)
    # The byte named counts from the file's start, its byte-order mark and earlier blocks included.
    nul = data.find(b"\0")
    with pytest.raises(InputError, match=rf"{path.name}.* is not PGN text: byte {nul} "):
        list(extract_board(path, sampling="all"))


def test_fen_start_and_variants(tmp_path: Path) -> None:
    fen = "4k3/8/8/8/8/8/4P3/4K3 b - - 0 40"
    text = (
        f'[Event "fp"]\n[Variant "From Position"]\n[SetUp "1"]\n[FEN "{fen}"]\n\n40... Kd7 41. e4 *\n\n'
        '[Event "std"]\n[Variant "Standard"]\n\n1. e4 *\n\n'
        '[Event "zh"]\n[Variant "Crazyhouse"]\n\n1. e4 e5 2. Nf3 N@f6 *\n'
    )
    path = tmp_path / "fen.pgn"
    path.write_text(text)
    summary = Summary()
    got = list(extract_board(path, sampling="all", summary=summary))
    assert_same_positions(got, replay(["Kd7", "e4"], fen) + replay(["e4"]))
    assert summary.skipped["variant"] == 1


@pytest.mark.parametrize(
    "suffix, compress",
    [
        (".pgn.zst", lambda b: zstandard.ZstdCompressor().compress(b)),
        (".pgn.bz2", bz2.compress),
        (".pgn.gz", gzip.compress),
    ],
)
def test_compressed_inputs_match_plain(games_file, tmp_path: Path, suffix: str, compress) -> None:
    plain, _ = games_file
    packed = tmp_path / f"games{suffix}"
    packed.write_bytes(compress(plain.read_bytes()))
    for sampling in ("all", "default"):
        assert tokens_of(list(extract_board(packed, sampling=sampling, seed=3))) == tokens_of(
            list(extract_board(plain, sampling=sampling, seed=3))
        )


def test_directories_globs_and_order(games_file, tmp_path: Path) -> None:
    plain, _ = games_file
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.pgn").write_text('[Event "b"]\n\n1. d4 *\n')
    (tmp_path / "a.pgn").write_text('[Event "a"]\n\n1. e4 *\n')
    (tmp_path / "notes.txt").write_text("not a game")
    by_dir = [r.headers["Event"] for r in iter_position_records(tmp_path, sampling="all")]
    assert by_dir == ["a", "b"]
    by_glob = [r.headers["Event"] for r in iter_position_records(str(tmp_path / "*.pgn"), sampling="all")]
    assert by_glob == ["a"]
    # A glob keeps only game files, as a directory does.
    assert [r.headers["Event"] for r in iter_position_records(str(tmp_path / "*"), sampling="all")] == ["a"]
    by_url = [r.headers["Event"] for r in iter_position_records(f"file://{tmp_path}/a.pgn", sampling="all")]
    assert by_url == ["a"]
    # Upper-case suffixes are game files too, in a directory or named; a name with glob characters is that file.
    (tmp_path / "sub" / "C.PGN").write_text('[Event "c"]\n\n1. c4 *\n')
    (tmp_path / "game[1].pgn").write_text('[Event "d"]\n\n1. Nf3 *\n')
    assert [r.headers["Event"] for r in iter_position_records(tmp_path / "sub", sampling="all")] == ["c", "b"]
    assert [r.headers["Event"] for r in iter_position_records(tmp_path / "sub" / "C.PGN", sampling="all")] == ["c"]
    assert [r.headers["Event"] for r in iter_position_records(tmp_path / "game[1].pgn", sampling="all")] == ["d"]
    (tmp_path / "set[2]").mkdir()
    (tmp_path / "set[2]" / "e.pgn").write_text('[Event "e"]\n\n1. g3 *\n')
    assert [r.headers["Event"] for r in iter_position_records(tmp_path / "set[2]", sampling="all")] == ["e"]


def test_empty_or_missing_data_path_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        list(extract_board(tmp_path))
    with pytest.raises(FileNotFoundError, match="nope.pgn"):
        list(extract_board(tmp_path / "nope.pgn"))
    # A link to nothing in an input folder names a file it should hold; a hidden one is left out, as hidden files are.
    (tmp_path / "a.pgn").write_text('[Event "a"]\n\n1. e4 *\n')
    (tmp_path / ".old").mkdir()
    (tmp_path / ".old" / "gone.pgn").symlink_to(tmp_path / "moved-away.pgn")
    assert [r.headers["Event"] for r in iter_position_records(tmp_path, sampling="all")] == ["a"]
    (tmp_path / "b.pgn").symlink_to(tmp_path / "elsewhere.pgn")
    with pytest.raises(FileNotFoundError, match=r"b\.pgn.*under input directory.*elsewhere\.pgn.*does not exist"):
        list(extract_board(tmp_path))


def test_corrupt_compressed_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.pgn.zst"
    path.write_bytes(b"this is not zstd")
    with pytest.raises(OSError, match="broken.pgn.zst"):
        list(extract_board(path))


def test_sampling_is_seeded(tmp_path: Path) -> None:
    path = write_pgn(tmp_path / "g.pgn", legal_games(seed=1, n=60))
    a = tokens_of(list(extract_board(path, seed=5, ply_full=1, ply_keep=0.5)))
    b = tokens_of(list(extract_board(path, seed=5, ply_full=1, ply_keep=0.5)))
    c = tokens_of(list(extract_board(path, seed=6, ply_full=1, ply_keep=0.5)))
    assert a == b and a != c
    assert 0 < len(a) < len(list(extract_board(path, sampling="all")))


def test_default_sampling_filters(tmp_path: Path) -> None:
    games = [
        '[Event "strong"]\n[WhiteElo "2500"]\n[BlackElo "2600"]\n[TimeControl "600+0"]\n\n',
        '[Event "weak"]\n[WhiteElo "1200"]\n[BlackElo "2600"]\n[TimeControl "600+0"]\n\n',
        '[Event "bullet"]\n[WhiteElo "2500"]\n[BlackElo "2600"]\n[TimeControl "60+0"]\n\n',
        '[Event "unknown tc"]\n[WhiteElo "2500"]\n[BlackElo "2600"]\n[TimeControl "-"]\n\n',
    ]
    moves = " ".join(f"{i // 4 + 1}. Nf3 Nf6 Ng1 Ng8" if i % 4 == 0 else "" for i in range(0, 200, 4))
    path = tmp_path / "s.pgn"
    path.write_text("".join(g + moves.replace("Ng1 Ng8", "Ng1 Ng8 ") + " *\n\n" for g in games))
    summary = Summary()
    records = list(iter_position_records(path, summary=summary, min_ply=10, max_ply=80))
    events = {r.headers["Event"] for r in records}
    assert events == {"strong", "unknown tc"}
    assert summary.skipped["time_control_filtered"] == 1 and summary.skipped["elo_filtered"] == 1
    assert all(10 <= r.ply <= 80 for r in records)
    # Plies past 30 keep ~0.33: out of 2 games x 50 plies (31..80), expect ~33.
    late = sum(r.ply > 30 for r in records)
    assert 10 < late < 60


def test_unknown_sampling_mode() -> None:
    with pytest.raises(ValueError, match="unknown sampling mode 'most'"):
        list(extract_board("x.pgn", sampling="most"))


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is absent")
def test_real_lichess_and_tricky_files_match_python_chess() -> None:
    import chess.pgn

    files = sorted((SHARED / "lichess").glob("*.pgn"))
    expected = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            while (game := chess.pgn.read_game(handle)) is not None:
                board = game.board()
                for move in game.mainline_moves():
                    board.push(move)
                    expected.append(board.copy(stack=False))
    summary = Summary()
    got = list(extract_board([str(p) for p in files], sampling="all", summary=summary))
    # The batch encoder is checked against the per-board one above; it keeps this test fast.
    assert np.array_equal(encode_boards(got), encode_boards(expected))
    assert summary.positions == len(expected)

    tricky = Summary()
    assert list(extract_board(SHARED / "tricky", sampling="all", summary=tricky)) == []
    assert tricky.games_read > 600 and tricky.skipped["no_moves"] == tricky.games_read


def test_parse_tags_fast_path_equals_parse_tag() -> None:
    import random

    from chesspos_positions.pgn import parse_tag, parse_tags

    rng = random.Random(0)
    pieces = ['[Event "', '"]', "White", ' "x"', '\\"', "[", "]", '"', " ", "\\", "\t", "\n", "\r", "A", "0", "_", "-", "\xe9"]
    cases = [['[Event "a"]', '[White "b"]'], ['[Event "a\\"b"]'], ['[Event  "a"]'], [" [Event \"a\"] "], ['[Event "a"]\n[X "y"]'], []]
    cases += [["".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(rng.randint(1, 3))] for _ in range(3000)]
    for lines in cases:
        assert parse_tags(lines) == dict(tag for tag in map(parse_tag, lines) if tag is not None), lines


def test_unclosed_comment_does_not_swallow_later_games(tmp_path: Path) -> None:
    path = tmp_path / "brace.pgn"
    path.write_text(
        '[Event "A"]\n\n1. e4 { never closed e5\n\n'
        '[Event "B"]\n\n1. d4 d5 *\n\n'
        '[Event "C"]\n\n1. c4 *\n'
    )
    summary = Summary()
    records = list(iter_position_records(path, sampling="all", summary=summary))
    assert summary.games_read == 3
    assert [(r.headers["Event"], r.ply) for r in records] == [("A", 1), ("B", 1), ("B", 2), ("C", 1)]


#: Lines for texts that split_text must cut as split_games does: plain games (its fast path), and
#: around them everything that makes a game not plain: tag sections with blank lines and repeated
#: names, malformed tags, comments across lines and unclosed, escape and line comments, a ";" in
#: movetext, leading spaces, CR line ends and CRs inside lines, whitespace-only lines (NBSP too),
#: non-ASCII text and a line that is not UTF-8.
_LINES = [
    b'[Event "a"]', b'[White "b"]', b'[Event "c \\"d\\""]', b' [Event  "e" ] ', b'[Event e]', b"[", b'[Site "x"]\r',
    b"", b"", b"", b" ", b"\t", b"\r", b"\xc2\xa0",
    b"1. e4 e5 1-0", b"1. d4 { [%clk 0:01:00] } d5 *", b" 0-1", b"{ opens", b"closes } 2. Nf3", b"1. c4 ; c5 {",
    b"%escape", b";comment", b"  [Event \"f\"]", b"1. e4\r", b"1. e4 \r e5", b"{ a } { b", b"}", b"1. \xc3\xa9",
    b"1. e4 \xe9",
]
#: Plain games (split_text cuts them whole), to mix with the lines above.
_PLAIN = [
    b'[Event "a"]\n[White "b"]\n\n1. e4 { [%clk 0:03:00] } e5 { ; } 1-0\n',
    b'[Event "a"]\r\n[Site "b"]\r\n\r\n1. e4 e5\r\n2. Nf3 *\r\n\r',
    b'[Event "a"]\n1. d4\n \t0-1\n',
    b'[Event "a, b: c = d#"]\r\r\n\n{ opening } 1. e4 } e5 {}\n{ [%eval 0.1] }\r\r\n',
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_LINES) | st.sampled_from(_PLAIN), max_size=40), st.booleans())
def test_split_text_cuts_the_games_split_games_cuts(lines: list[bytes], final_newline: bool) -> None:
    text = b"\n".join(lines) + b"\n" * final_newline
    cut = text.split(b"\n")
    if cut[-1] == b"":
        cut.pop()
    assert list(split_text(text, "f")) == list(split_games(map(decode_line, cut), "f"))


def test_split_text_cuts_plain_games_whole_and_the_rest_line_by_line() -> None:
    plain = '[Event "a"]\n[White "b"]\n\n1. e4 { [%clk 0:03:00] } e5 1-0\n\n'
    odd = '[Event "c"]\n\n1. d4 { a comment\n\nacross a blank line } d5 *\n\n'
    text = (plain + odd + plain).encode()
    lines = text.decode().split("\n")[:-1]
    games = list(split_text(text, "f"))
    assert games == list(split_games(lines, "f"))
    assert [(g.index, g.line, g.tags[0]) for g in games] == [(0, 1, '[Event "a"]'), (1, 6, '[Event "c"]'), (2, 12, '[Event "a"]')]
    assert games[1].movetext == ("1. d4 { a comment", "", "across a blank line } d5 *")


def test_odd_rating_values_are_unknown(tmp_path: Path) -> None:
    path = tmp_path / "elo.pgn"
    path.write_bytes('[Event "x"]\n[WhiteElo "\xb2"]\n[BlackElo "-5"]\n\n1. e4 *\n'.encode("latin-1"))
    summary = Summary()
    list(extract_board(path, summary=summary, seed=0))
    assert summary.games_read == 1  # read, not crashed: unknown ratings count as 0


def test_seed_must_be_a_64_bit_unsigned_int(tmp_path: Path) -> None:
    path = write_pgn(tmp_path / "g.pgn", legal_games(seed=1, n=1))
    with pytest.raises(ValueError, match="seed"):
        list(extract_board(path, seed=-1))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), digests=st.lists(st.binary(min_size=16, max_size=32), min_size=1, max_size=20))
def test_first_draws_are_numpys_first_draws(seed: int, digests: list[bytes]) -> None:
    # The batched seeding must give, bit for bit, what each game's own generator draws first.
    expected = np.array([game_rng(seed, digest).random() for digest in digests])
    assert np.array_equal(first_draws(seed, digests), expected)


def test_first_draws_check_the_seed_and_digests() -> None:
    with pytest.raises(ValueError, match="seed"):
        first_draws(2**64, [bytes(16)])
    with pytest.raises(ValueError, match="16 bytes"):
        first_draws(0, [bytes(8), bytes(8)])


def test_games_started_together_draw_as_games_started_alone() -> None:
    # Elo draws made for a whole unit at once, then each kept game's generator: the same skips and the same
    # later draws as one game at a time, over kept, Elo-dropped, time-control-dropped and broken games.
    tags = ['[WhiteElo "2500"]\n[BlackElo "2600"]\n[TimeControl "600+0"]', '[WhiteElo "2100"]\n[BlackElo "2200"]',
            '[WhiteElo "1200"]\n[BlackElo "1300"]', '[WhiteElo "2500"]\n[BlackElo "2600"]\n[TimeControl "60+0"]',
            '[Variant "Chess960"]']
    text = "".join(f'[Event "g{i}"]\n{tags[i % len(tags)]}\n\n1. e4 e5 *\n\n' for i in range(200))
    raws = list(split_games(text.splitlines()))
    for sampling in (Sampling(), Sampling(elo_tiers=((0, 0.5),)), Sampling(keep_all=True)):
        together = start_games(raws, sampling, 11)
        alone = [start_game(raw, sampling, 11) for raw in raws]
        assert [(g.skip, g.error) for g, _ in together] == [(g.skip, g.error) for g, _ in alone]
        assert [None if r is None else r.random(5).tolist() for _, r in together] == \
               [None if r is None else r.random(5).tolist() for _, r in alone]
    assert {g.skip for g, _ in start_games(raws, Sampling(), 11)} >= {None, "elo_filtered", "time_control_filtered", "variant"}
