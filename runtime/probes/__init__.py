"""Where probes attach: uprobe and USDT targets on the host and inside containers."""
