"""Networks as plain ``nn.Module`` classes: TinyCNN (:mod:`.cnn`) and the sparse-pixel CNN (:mod:`.sparse`)."""
