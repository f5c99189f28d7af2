/// Portico's own Python program for `runtime: python` functions (`Launcher/python_launcher.py`,
/// embedded in the binary), and how a worker or a template runs it.
enum PythonLauncher {
    enum Role: String {
        /// Import the handler, then fork a worker per request on the control socket (fd 0).
        case template
        /// Import the handler and serve it on `$PORT` (`template: false`).
        case serve
    }

    /// The program reaches the interpreter through the environment, not a file: nothing to
    /// write, clean up or keep in sync with the binary. It pops the variable before the
    /// handler is imported, so the handler never sees it.
    static let environmentName = "PORTICO_LAUNCHER"

    static let source = String(decoding: PackageResources.python_launcher_py, as: UTF8.self)

    private static let bootstrap = "import os; exec(compile(os.environ.pop('\(environmentName)'), 'portico-launcher', 'exec'))"

    /// What the handler is: a WSGI application, or a Lambda-style `handler(event, context)`.
    enum Interface: String {
        case wsgi
        case lambda
    }

    static func command(_ role: Role, _ interface: Interface = .wsgi, handler: String) -> [String] {
        ["python3", "-c", bootstrap, role.rawValue, interface.rawValue, handler]
    }
}
