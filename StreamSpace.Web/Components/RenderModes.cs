using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;

namespace StreamSpace.Web.Components;

public static class RenderModes
{
    /// <summary>
    /// Interactive server rendering without prerendering, for pages with actions: a prerendered button does nothing
    /// until the circuit connects, so a quick click would be lost. The page appears once it can act.
    /// </summary>
    public static readonly IComponentRenderMode Interactive = new InteractiveServerRenderMode(prerender: false);
}
