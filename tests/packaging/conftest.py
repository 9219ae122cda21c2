"""Package tests: build the .deb, and try it on a fresh Debian in a chroot."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes, not seconds (the .deb build and its chroot)")
