"""``@rawhttp`` and ``AMLRequest``: a ``@rawhttp`` run() gets the request (method, args, headers,
``get_data()``), as in Azure ML; Kiln's worker builds it."""


class AMLRequest(object):
    pass


def rawhttp(func):
    func._kiln_rawhttp = True
    return func
