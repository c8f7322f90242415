#!/usr/bin/env python3
"""Interop: WireMock's Python client (wiremock, from PyPI) driving a stubs row, and curl
meeting the stubs' faults.

The client knows nothing of switchboard: it creates mappings (a JSON answer, and a scenario
that fails twice before it succeeds), the test calls them with requests, then the client
counts and finds what was called, resets scenarios and removes everything. curl then meets
each fault the way an application's HTTP client would.

Usage: stubs_client.py path/to/switchboard
Run by .ci/run in its virtualenv, with wiremock and requests installed, and curl.
"""

import subprocess

import requests
from wiremock.constants import Config
from wiremock.resources.mappings import HttpMethods, Mapping, MappingRequest, MappingResponse
from wiremock.resources.mappings.resource import Mappings
from wiremock.resources.near_misses import NearMissMatchPatternRequest
from wiremock.resources.requests.resource import Requests
from wiremock.resources.scenarios.resource import Scenarios

from harness import PATIENCE, check, run


def scenario(sb):
    base = f"http://{sb.addrs['stubs']}"
    Config.base_url = f"{base}/__admin"

    created = Mappings.create_mapping(Mapping(
        priority=1,
        request=MappingRequest(method=HttpMethods.GET, url_path_pattern="/users/[0-9]+"),
        response=MappingResponse(status=200, json_body={"id": 42, "name": "Ann"}),
    ))
    check("create_mapping answers with the new stub's id", bool(created.id), created)
    answer = requests.get(f"{base}/users/42", timeout=PATIENCE)
    check("the stub answers a real request",
          answer.status_code == 200 and answer.json() == {"id": 42, "name": "Ann"},
          f"{answer.status_code} {answer.text}")
    fetched = Mappings.retrieve_mapping(created.id)
    check("retrieve_mapping gives it back", fetched.id == created.id)

    # A retry test: 503 twice, then 200.
    for required, new, status in [("Started", "failed once", 503),
                                  ("failed once", "failed twice", 503),
                                  ("failed twice", None, 200)]:
        mapping = Mapping(
            scenario_name="charge", required_scenario_state=required,
            request=MappingRequest(method=HttpMethods.POST, url="/v1/charges"),
            response=MappingResponse(status=status),
        )
        if new:
            mapping.new_scenario_state = new
        Mappings.create_mapping(mapping)
    codes = [requests.post(f"{base}/v1/charges", json={"amount": 1000}, timeout=PATIENCE)
             .status_code for _ in range(3)]
    check("the scenario fails twice, then succeeds", codes == [503, 503, 200], codes)

    counted = Requests.get_matching_request_count(NearMissMatchPatternRequest(
        url="/v1/charges", method=HttpMethods.POST))
    check("count: the client called three times", counted.count == 3, counted.count)
    found = Requests.get_matching_requests(NearMissMatchPatternRequest(
        url="/v1/charges", method=HttpMethods.POST,
        body_patterns={"equalToJson": {"amount": 1000}}))
    check("find: with the body the client sent", len(found.requests) == 3,
          len(found.requests))
    all_requests = Requests.get_all_received_requests()
    check("the journal holds every request", all_requests.meta.total == 4,
          all_requests.meta.total)

    Scenarios.reset_all_scenarios()
    again = requests.post(f"{base}/v1/charges", timeout=PATIENCE).status_code
    check("after reset_all_scenarios it fails again", again == 503, again)

    Requests.reset_request_journal()
    check("reset_request_journal empties it",
          Requests.get_all_received_requests().meta.total == 0)
    listed = Mappings.retrieve_all_mappings()
    check("retrieve_all_mappings lists the four stubs", listed.meta.total == 4,
          listed.meta.total)
    Mappings.delete_all_mappings()
    check("delete_all_mappings removes them",
          Mappings.retrieve_all_mappings().meta.total == 0)

    # curl against the faults.
    for fault, expected in [("EMPTY_RESPONSE", 52), ("CONNECTION_RESET_BY_PEER", 56),
                            ("MALFORMED_RESPONSE_CHUNK", 18)]:
        Mappings.create_mapping(Mapping(
            request=MappingRequest(url=f"/{fault}"),
            response=MappingResponse(fault=fault, body="a body long enough to cut in two"),
        ))
        code = subprocess.run(["curl", "--silent", "--max-time", str(PATIENCE),
                               f"{base}/{fault}"], capture_output=True).returncode
        check(f"curl meets {fault} (exit {expected})", code == expected, f"exit {code}")
    Mappings.create_mapping(Mapping(
        request=MappingRequest(url="/RANDOM_DATA_THEN_CLOSE"),
        response=MappingResponse(fault="RANDOM_DATA_THEN_CLOSE"),
    ))
    garbage = subprocess.run(["curl", "--silent", "--max-time", str(PATIENCE), "--http1.1",
                              f"{base}/RANDOM_DATA_THEN_CLOSE"], capture_output=True)
    check("curl meets RANDOM_DATA_THEN_CLOSE (not HTTP)", garbage.returncode != 0,
          f"exit {garbage.returncode}")


if __name__ == "__main__":
    run("stubs client", scenario, services=("stubs",))
