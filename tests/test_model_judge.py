"""The optional model judge: its requests and the verdicts it reads, against a local stand-in server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from diatool_utils.benchmark import load_dialog_benchmark
from diatool_utils.evaluation import Generation, score_replies
from diatool_utils.model_judge import ModelJudge, ModelJudgeError, fill_rubric, load_rubrics, read_verdict

SMALL = Path(__file__).parent / "data" / "dialog_small.jsonl"
RUBRIC = "Tools: {tools}\nHistory: {query}\nGold: {ground_truth}\nReply: {response}\nEnd with pass or fail."


class StandIn(BaseHTTPRequestHandler):
    """Answers each POST with the next scripted (status, body) and keeps what it was sent."""

    def do_POST(self):  # noqa: N802 (the http.server name)
        length = int(self.headers["Content-Length"])
        self.server.received.append((self.path, dict(self.headers), json.loads(self.rfile.read(length))))
        status, body = self.server.script.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode("utf-8"))

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = HTTPServer(("127.0.0.1", 0), StandIn)
    httpd.received, httpd.script = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def completion(text):
    return 200, json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def judge(server, tmp_path):
    for kind in ("call", "completion", "slot", "relevance"):
        (tmp_path / f"rubric_{kind}.txt").write_text(f"[{kind}]\n" + RUBRIC, encoding="utf-8")
    environ = {"DIATOOL_JUDGE_BASE_URL": f"http://127.0.0.1:{server.server_port}/v1",
               "DIATOOL_JUDGE_MODEL": "judge-model", "DIATOOL_JUDGE_API_KEY": "secret-key",
               "DIATOOL_JUDGE_RUBRICS": str(tmp_path)}
    return ModelJudge.from_environment(environ, timeout=5)


@pytest.fixture(scope="module")
def cases():
    return load_dialog_benchmark(SMALL)


def reply(content=None, calls=()):
    return SimpleNamespace(content=content, tool_calls=[{"name": n, "arguments": a} for n, a in calls], valid=True)


def test_the_request_carries_the_filled_rubric_model_and_key(judge, server, cases):
    server.script.append(completion("단계별로 보면 값이 모두 맞습니다.\npass\npass"))
    passed, reason = judge(cases[0], reply(calls=[("get_weather", {"city": "Paris"})]))
    assert passed and reason.startswith("model judge (judge-model): pass")
    [(path, headers, body)] = server.received
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer secret-key"
    assert body["model"] == "judge-model" and body["temperature"] == 0
    prompt = body["messages"][0]["content"]
    assert prompt.startswith("[call]\nTools: [{") and '"name": "get_weather"' in prompt
    assert 'Reply: {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": ' \
           '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]}' in prompt
    assert '"id"' not in prompt.split("Gold: ")[1].split("\n")[0]  # ground-truth call ids are left out


def test_each_output_type_gets_its_own_rubric(judge, server, cases):
    server.script += [completion("fail\nfail"), completion("이유...\n통과")]
    assert judge(cases[2], reply("I have booked your flight."))[0] is False
    assert judge(cases[3], reply("Who should receive it, and what is the subject?"))[0] is True
    assert [body["messages"][0]["content"].split("\n")[0] for _, _, body in server.received] == ["[relevance]", "[slot]"]


def test_the_harness_counts_a_judge_error_on_that_turn_and_goes_on(judge, server, cases):
    server.script += [(500, '{"error": "overloaded"}'), completion("no verdict here"), completion("ok\npass")]
    generations = [Generation("all\n<|content|>Sorry, I can't book flights.<|stop|>", "stop", 5)] * 3
    results = score_replies([cases[2]] * 3, generations, judge=judge)
    assert [r.passed for r in results] == [False, False, True]
    assert results[0].reason.startswith("judge error: ModelJudgeError") and "HTTP 500" in results[0].reason
    assert "neither pass nor fail" in results[1].reason


@pytest.mark.parametrize(("answer", "verdict"), [
    ("reasoning\npass\npass", True), ("reasoning\nFail\nfail", False), ("...\n불합격", False), ("...\n합격입니다", True),
    ("설명\n**pass**", True), ("The reply passes.\nPASS", True),
])
def test_read_verdict_takes_the_last_lines(answer, verdict):
    assert read_verdict(answer) is verdict


@pytest.mark.parametrize("answer", ["", "pass or fail?", "step one\nstep two\nI am not sure"])
def test_read_verdict_refuses_an_answer_without_one_clear_verdict(answer):
    with pytest.raises(ModelJudgeError):
        read_verdict(answer)


def test_a_reply_that_is_not_a_chat_completion_is_an_error(judge, server, cases):
    server.script.append((200, '{"unexpected": true}'))
    with pytest.raises(ModelJudgeError, match="did not answer with a chat completion"):
        judge(cases[0], reply("hi"))


def test_an_unreachable_endpoint_is_an_error_naming_it(judge, cases):
    judge.base_url = "http://127.0.0.1:9/v1"
    with pytest.raises(ModelJudgeError, match=r"http://127\.0\.0\.1:9/v1/chat/completions could not be reached"):
        judge(cases[0], reply("hi"))


def test_configuration_names_what_is_missing(tmp_path):
    with pytest.raises(ModelJudgeError, match="DIATOOL_JUDGE_BASE_URL, DIATOOL_JUDGE_MODEL, DIATOOL_JUDGE_RUBRICS"):
        ModelJudge.from_environment({})
    with pytest.raises(ModelJudgeError, match=r"rubric_call\.txt not found"):
        load_rubrics(tmp_path)


def test_acceptable_arguments_and_braces_in_values_are_filled_as_json(cases):
    case = cases[0]
    text = fill_rubric("{acceptable_arguments} | {response}", case, reply("use {city} as is"))
    assert text == '{"city": ["Paris, France"]} | {"role": "assistant", "content": "use {city} as is", "tool_calls": null}'
