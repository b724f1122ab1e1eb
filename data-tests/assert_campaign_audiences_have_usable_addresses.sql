-- Every mail piece a campaign selects must have the address fields a mail house needs to print it.
with

winter_catalog as (

    select * from {{ ref('winter_catalog') }}

)

select *
from winter_catalog
where
    address_line_1 is null
    or postal_code is null
    or city is null
    or country_code is null
