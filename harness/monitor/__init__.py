"""After shipping: A/B tests and interleaving from production logs (:mod:`.abtest`,
:mod:`.interleave`, :mod:`.clickmodel`) and drift that says when to retrain (:mod:`.drift`)."""
