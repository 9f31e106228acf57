"""Tests of backends/recording.py: recording answers, replaying them, torn and bad lines."""

import threading

import pytest

from cosmos_planner.backends.faults import FaultInjectingBackend
from cosmos_planner.backends.recording import (read_recordings, RecordingBackend,
                                               ReplayBackend)
from cosmos_planner.errors import (BackendError, ConfigError, GenerationCancelled,
                                   ReplayMissError)
from cosmos_planner.model.cancel import CancelToken
from cosmos_planner.model.parser import parse_answer
from planner_helpers import (NVIDIA_STYLE_ANSWER, PLAN_ANSWER, request_for, synthetic_clip,
                             write_recording)


# --- replay --------------------------------------------------------------------------------

def test_replay_answers_by_fingerprint(recorded, requests_):
    replay = ReplayBackend(recorded)
    # Asked in the other order: answers follow the request, not the file order.
    assert replay.generate(requests_[1]).text == NVIDIA_STYLE_ANSWER
    completion = replay.generate(requests_[0])
    assert completion.text == PLAN_ANSWER
    assert completion.backend == 'replay' and completion.model == 'recorded-model'
    assert completion.meta['fingerprint'] == requests_[0].fingerprint()
    assert replay.health()['ok'] is True


def test_replay_of_a_cancelled_job_uses_up_no_answer(recorded, requests_):
    replay = ReplayBackend(recorded)
    token = CancelToken()
    token.cancel()
    with pytest.raises(GenerationCancelled):
        replay.generate(requests_[0], token)
    assert replay.replayed == 0
    assert replay.generate(requests_[0], CancelToken()).text == PLAN_ANSWER


def test_replay_miss_names_the_fingerprint(recorded):
    other = request_for(synthetic_clip(width=200, height=100))
    with pytest.raises(ReplayMissError, match=other.fingerprint()) as info:
        ReplayBackend(recorded).generate(other)
    assert info.value.retryable is False
    assert isinstance(info.value, BackendError)


def test_identical_requests_replay_in_recorded_order(tmp_path, requests_):
    answers = [(requests_[0], 'first'), (requests_[1], 'other'), (requests_[0], 'second')]
    path = write_recording(tmp_path / 'r.jsonl', answers)
    replay = ReplayBackend(path)
    assert [replay.generate(requests_[0]).text for _ in range(2)] == ['first', 'second']
    with pytest.raises(ReplayMissError, match='already replayed'):
        replay.generate(requests_[0])
    repeat = ReplayBackend(path, when_exhausted='repeat_last')
    assert [repeat.generate(requests_[0]).text for _ in range(3)] == ['first', 'second',
                                                                      'second']


def test_replay_of_a_missing_file_or_bad_option(tmp_path):
    with pytest.raises(ConfigError, match='does not exist'):
        ReplayBackend(tmp_path / 'nope.jsonl')
    (tmp_path / 'x.jsonl').write_text('')
    with pytest.raises(ConfigError, match='when_exhausted'):
        ReplayBackend(tmp_path / 'x.jsonl', when_exhausted='cycle')


# --- recording -----------------------------------------------------------------------------

def test_recording_writes_one_flushed_line_per_answer(recorded, requests_, tmp_path):
    out = tmp_path / 'sub' / 'rec.jsonl'
    recorder = RecordingBackend(ReplayBackend(recorded), out)
    recorder.generate(requests_[0])
    # Flushed per line: readable while the recorder is still open.
    entries, skipped = read_recordings(out)
    assert skipped == 0 and len(entries) == 1
    assert entries[0]['fingerprint'] == requests_[0].fingerprint()
    assert entries[0]['text'] == PLAN_ANSWER
    assert entries[0]['preset'] == 'plan' and entries[0]['task'] == requests_[0].task
    recorder.generate(requests_[1])
    recorder.close()
    assert len(out.read_text().splitlines()) == 2
    assert recorder.recorded == 2


def test_record_then_replay_gives_identical_parse(recorded, requests_, tmp_path):
    out = tmp_path / 'rec.jsonl'
    with RecordingBackend(ReplayBackend(recorded), out) as recorder:
        live = [recorder.generate(r) for r in requests_]
    replay = ReplayBackend(out)
    for request, first in zip(requests_, live):
        again = replay.generate(request)
        assert again.text == first.text
        size = request.clip.newest.native_size
        assert parse_answer(again.text, size) == parse_answer(first.text, size)


def test_failures_are_not_recorded(tmp_path, requests_):
    out = tmp_path / 'rec.jsonl'
    recorder = RecordingBackend(FaultInjectingBackend(faults=['error']), out)
    with pytest.raises(BackendError):
        recorder.generate(requests_[0])
    recorder.close()
    assert out.read_text() == ''


def test_torn_last_line_is_ignored_and_sealed(recorded, requests_, tmp_path):
    data = recorded.read_text()
    torn = tmp_path / 'torn.jsonl'
    torn.write_text(data + data.splitlines()[0][:37])  # a crash mid-write
    replay = ReplayBackend(torn)
    assert replay.skipped_lines == 1 and replay.total == 2
    assert replay.generate(requests_[0]).text == PLAN_ANSWER
    # A recorder reopening the file starts on a fresh line: the torn bytes stay apart.
    with RecordingBackend(ReplayBackend(recorded), torn) as recorder:
        recorder.generate(requests_[1])
    entries, skipped = read_recordings(torn)
    assert skipped == 1 and len(entries) == 3
    assert entries[-1]['text'] == NVIDIA_STYLE_ANSWER


def test_unreadable_middle_lines_are_skipped(tmp_path, requests_):
    path = tmp_path / 'r.jsonl'
    write_recording(path, [(requests_[0], 'a')])
    with open(path, 'ab') as f:
        f.write(b'\xff\xfe not json\n{"fingerprint": 5, "text": "x"}\n[1, 2]\n\n')
    write_recording(path, [(requests_[0], 'b')])
    entries, skipped = read_recordings(path)
    assert [e['text'] for e in entries] == ['a', 'b'] and skipped == 3


def test_recording_forwards_cancel_and_health(tmp_path):
    inner = FaultInjectingBackend(faults=['hang:30'])
    recorder = RecordingBackend(inner, tmp_path / 'r.jsonl')
    assert recorder.health()['recording'] == str(tmp_path / 'r.jsonl')
    errors = []
    token = CancelToken()

    def worker():
        try:
            recorder.generate(request_for(synthetic_clip()), token)
        except GenerationCancelled as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    assert inner.waiting.wait(10)
    token.cancel()
    thread.join(10)
    assert not thread.is_alive() and len(errors) == 1
    recorder.close()


def test_unwritable_recording_fails_the_generation(recorded, requests_):
    # /dev/full accepts the open and fails every write with ENOSPC, like a full disk.
    recorder = RecordingBackend(ReplayBackend(recorded), '/dev/full')
    with pytest.raises(BackendError, match='cannot record'):
        recorder.generate(requests_[0])
    with pytest.raises(ConfigError, match='cannot open'):
        RecordingBackend(ReplayBackend(recorded), recorded / 'under-a-file.jsonl')
