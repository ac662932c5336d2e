"""One torch thread for these tests: on shared 2-core machines a 2-thread pool waits on descheduled
threads and runs the small ops here many times slower (as measured for sentio.features.cache.one_torch_thread)."""

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
