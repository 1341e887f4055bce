"""Turning model output into a validated ``ExtractionResult``.

``normalize`` maps printed field text to contract values (ISO dates, decimal-string amounts,
ISO 4217 currencies, compact IBANs and tax ids) with number and date conventions decided once per
document; ``validate`` checks the arithmetic of a result and repairs single misread values from
runner-up candidates. The decoder and the ``Extractor`` pipeline live beside them.
"""
